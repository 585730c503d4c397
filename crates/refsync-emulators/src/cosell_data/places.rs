//! Countries and cities with postal codes, states, phone formats, currencies and
//! locales that belong together, so a generated customer in Lyon has a `690xx`
//! postal code, `FR`, a `+33` phone number and a French name.
//!
//! Templates: `#` a digit, `%` a digit 1–9, `?` an upper-case letter; anything else is literal.

/// Which `fake` locale names and streets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameLocale {
    En,
    De,
    Fr,
    PtBr,
}

/// How a street line is written in the country.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreetStyle {
    /// `350 Fifth Avenue`
    Anglo,
    /// `Friedrichstraße 68`
    Continental,
    /// `Avenida Paulista, 1578`
    Brazilian,
}

/// A city a customer can be in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct City {
    pub(crate) name: &'static str,
    pub(crate) state: Option<&'static str>,
    /// Postal code templates valid for the city.
    pub(crate) postal: &'static [&'static str],
}

/// A country and what goes with it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Country {
    /// ISO 3166 alpha-2.
    pub(crate) iso2: &'static str,
    /// ISO 4217.
    pub(crate) currency: &'static str,
    /// Phone number template.
    pub(crate) phone: &'static str,
    /// Contact locale (`contactPreference.locale`).
    pub(crate) locale: &'static str,
    pub(crate) names: NameLocale,
    pub(crate) street: StreetStyle,
    /// Top-level domain for company e-mail addresses.
    pub(crate) tld: &'static str,
    /// Relative frequency among generated customers.
    pub(crate) weight: u32,
    pub(crate) cities: &'static [City],
}

const fn city(
    name: &'static str,
    state: Option<&'static str>,
    postal: &'static [&'static str],
) -> City {
    City {
        name,
        state,
        postal,
    }
}

pub(crate) const COUNTRIES: &[Country] = &[
    Country {
        iso2: "US",
        currency: "USD",
        phone: "+1 %## 555 01##",
        locale: "en-US",
        names: NameLocale::En,
        street: StreetStyle::Anglo,
        tld: "com",
        weight: 40,
        cities: &[
            city("Redmond", Some("WA"), &["98052", "98053"]),
            city("Seattle", Some("WA"), &["981##"]),
            city("New York", Some("NY"), &["100##"]),
            city("Austin", Some("TX"), &["787##"]),
            city("Chicago", Some("IL"), &["606##"]),
            city("San Francisco", Some("CA"), &["941##"]),
            city("Boston", Some("MA"), &["021##"]),
            city("Atlanta", Some("GA"), &["303##"]),
            city("Denver", Some("CO"), &["802##"]),
        ],
    },
    Country {
        iso2: "GB",
        currency: "GBP",
        phone: "+44 20 7946 0###",
        locale: "en-GB",
        names: NameLocale::En,
        street: StreetStyle::Anglo,
        tld: "co.uk",
        weight: 10,
        cities: &[
            city(
                "London",
                None,
                &["EC1A %??", "SW1A %??", "E14 %??", "W1D %??"],
            ),
            city("Manchester", None, &["M1 %??", "M2 %??"]),
            city("Edinburgh", None, &["EH1 %??", "EH2 %??"]),
            city("Birmingham", None, &["B1 %??", "B3 %??"]),
        ],
    },
    Country {
        iso2: "DE",
        currency: "EUR",
        phone: "+49 30 9018 ####",
        locale: "de-DE",
        names: NameLocale::De,
        street: StreetStyle::Continental,
        tld: "de",
        weight: 10,
        cities: &[
            city("Berlin", Some("BE"), &["101##", "106##"]),
            city("München", Some("BY"), &["803##", "806##"]),
            city("Hamburg", Some("HH"), &["200##", "203##"]),
            city("Frankfurt am Main", Some("HE"), &["603##"]),
        ],
    },
    Country {
        iso2: "FR",
        currency: "EUR",
        phone: "+33 1 ## ## ## ##",
        locale: "fr-FR",
        names: NameLocale::Fr,
        street: StreetStyle::Anglo,
        tld: "fr",
        weight: 8,
        cities: &[
            city("Paris", Some("Île-de-France"), &["7500%", "7501#"]),
            city("Lyon", Some("Auvergne-Rhône-Alpes"), &["6900%"]),
            city(
                "Marseille",
                Some("Provence-Alpes-Côte d'Azur"),
                &["1300%", "1301#"],
            ),
            city("Toulouse", Some("Occitanie"), &["3100%"]),
        ],
    },
    Country {
        iso2: "CA",
        currency: "CAD",
        phone: "+1 %## 555 01##",
        locale: "en-CA",
        names: NameLocale::En,
        street: StreetStyle::Anglo,
        tld: "ca",
        weight: 7,
        cities: &[
            city("Toronto", Some("ON"), &["M5V %?#", "M4W %?#"]),
            city("Vancouver", Some("BC"), &["V6B %?#", "V6C %?#"]),
            city("Ottawa", Some("ON"), &["K1P %?#"]),
        ],
    },
    Country {
        iso2: "AU",
        currency: "AUD",
        phone: "+61 2 9### ####",
        locale: "en-AU",
        names: NameLocale::En,
        street: StreetStyle::Anglo,
        tld: "com.au",
        weight: 6,
        cities: &[
            city("Sydney", Some("NSW"), &["20##"]),
            city("Melbourne", Some("VIC"), &["30##"]),
            city("Brisbane", Some("QLD"), &["40##"]),
        ],
    },
    Country {
        iso2: "NL",
        currency: "EUR",
        phone: "+31 20 ### ####",
        locale: "nl-NL",
        names: NameLocale::En,
        street: StreetStyle::Continental,
        tld: "nl",
        weight: 5,
        cities: &[
            city("Amsterdam", Some("NH"), &["10## ??"]),
            city("Rotterdam", Some("ZH"), &["30## ??"]),
        ],
    },
    Country {
        iso2: "BR",
        currency: "BRL",
        phone: "+55 11 9####-####",
        locale: "pt-BR",
        names: NameLocale::PtBr,
        street: StreetStyle::Brazilian,
        tld: "com.br",
        weight: 5,
        cities: &[
            city("São Paulo", Some("SP"), &["01310-###", "04538-###"]),
            city("Rio de Janeiro", Some("RJ"), &["20040-###"]),
        ],
    },
    Country {
        iso2: "IN",
        currency: "INR",
        phone: "+91 80 #### ####",
        locale: "en-IN",
        names: NameLocale::En,
        street: StreetStyle::Anglo,
        tld: "in",
        weight: 5,
        cities: &[
            city("Bengaluru", Some("KA"), &["5600##"]),
            city("Mumbai", Some("MH"), &["4000##"]),
        ],
    },
    Country {
        iso2: "JP",
        currency: "JPY",
        phone: "+81 3 #### ####",
        locale: "ja-JP",
        names: NameLocale::En,
        street: StreetStyle::Anglo,
        tld: "co.jp",
        weight: 4,
        cities: &[
            city("Tokyo", Some("Tokyo"), &["100-00##", "105-00##"]),
            city("Osaka", Some("Osaka"), &["530-00##"]),
        ],
    },
];
