//! Static tables behind the synthetic recipients: names in several scripts, Indian states weighted by
//! population with a few real districts and their pincode prefixes, streets, localities, facilities.
//!
//! The tables are small on purpose: realism here means "the pipeline sees the shapes and scripts a
//! national registry sends" (multi-byte names, apostrophes, quotes, skewed state distribution),
//! not demographic accuracy.

/// Writing system of a generated name; decides which name table is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Script {
    Latin,
    Devanagari,
    Tamil,
    Bengali,
    Urdu,
}

/// Given names and surnames of one script, split by gender so names match `recipient.gender`.
pub(crate) struct NameTable {
    pub male: &'static [&'static str],
    pub female: &'static [&'static str],
    pub surnames: &'static [&'static str],
}

pub(crate) const LATIN: NameTable = NameTable {
    male: &[
        "Rahul",
        "Amit",
        "Suresh",
        "Ramesh",
        "Vijay",
        "Sanjay",
        "Arun",
        "Rajesh",
        "Mohammed",
        "Abdul",
        "Imran",
        "Gurpreet",
        "Manoj",
        "Anil",
        "Sunil",
        "Prakash",
        "Venkatesh",
        "Srinivas",
        "Karthik",
        "Arjun",
        "Rohan",
        "Aditya",
        "Sai",
        "Ravi",
        "Mahesh",
        "Ganesh",
        "Deepak",
        "Ashok",
        "Joseph",
        "Thomas",
        "Francis",
        "Subramaniam",
        "Biswajit",
        "Sourav",
        "Tenzin",
        "Lalremsanga",
        "Jean-Paul",
        "Mohan",
        "Naveen",
        "Harish",
        "Farhan",
        "Salim",
        "Vikram",
        "Yusuf",
    ],
    female: &[
        "Priya",
        "Anjali",
        "Sunita",
        "Lakshmi",
        "Kavita",
        "Pooja",
        "Neha",
        "Deepa",
        "Meena",
        "Fatima",
        "Ayesha",
        "Shabana",
        "Gurleen",
        "Simran",
        "Divya",
        "Swati",
        "Rekha",
        "Geeta",
        "Sarita",
        "Anita",
        "Mary",
        "Elizabeth",
        "Jyoti",
        "Parvati",
        "Saraswati",
        "Radha",
        "Shreya",
        "Ananya",
        "Bhavna",
        "Nandini",
        "Mousumi",
        "Rupa",
        "Lalthanpuii",
        "Mary-Ann",
        "Anne-Marie",
        "Zainab",
        "Harpreet",
    ],
    surnames: &[
        "Sharma",
        "Verma",
        "Gupta",
        "Singh",
        "Kumar",
        "Yadav",
        "Patel",
        "Shah",
        "Reddy",
        "Rao",
        "Naidu",
        "Iyer",
        "Iyengar",
        "Nair",
        "Menon",
        "Pillai",
        "Das",
        "Ghosh",
        "Banerjee",
        "Chatterjee",
        "Mukherjee",
        "Bose",
        "Khan",
        "Ahmed",
        "Ansari",
        "Qureshi",
        "Sheikh",
        "Patil",
        "Deshmukh",
        "Kulkarni",
        "Jadhav",
        "Gill",
        "Sandhu",
        "Dhillon",
        "Mishra",
        "Tiwari",
        "Pandey",
        "Chauhan",
        "Rathore",
        "Mehta",
        "Joshi",
        "Bhat",
        "Hegde",
        "Gowda",
        "Fernandes",
        "D'Souza",
        "D'Cruz",
        "D'Mello",
        "Pereira",
        "Sahu",
        "Behera",
        "Mohanty",
        "Baruah",
        "Gogoi",
        "Bora",
        "Sen-Gupta",
        "Thakur",
        "Chaudhary",
    ],
};

pub(crate) const DEVANAGARI: NameTable = NameTable {
    male: &[
        "राहुल",
        "अमित",
        "सुरेश",
        "रमेश",
        "विजय",
        "संजय",
        "मनोज",
        "अनिल",
        "प्रकाश",
        "दीपक",
    ],
    female: &[
        "प्रिया",
        "सुनीता",
        "कविता",
        "पूजा",
        "नेहा",
        "गीता",
        "रेखा",
        "अनीता",
        "ज्योति",
        "राधा",
    ],
    surnames: &[
        "शर्मा",
        "वर्मा",
        "गुप्ता",
        "सिंह",
        "कुमार",
        "यादव",
        "मिश्रा",
        "तिवारी",
        "पाण्डेय",
        "पाटिल",
        "जाधव",
        "देशमुख",
        "कुलकर्णी",
        "चौहान",
    ],
};

pub(crate) const TAMIL: NameTable = NameTable {
    male: &[
        "அருண்",
        "கார்த்திக்",
        "முருகன்",
        "செந்தில்",
        "ராஜா",
        "சுரேஷ்",
        "வேலு",
        "பாலாஜி",
    ],
    female: &[
        "லட்சுமி",
        "மீனா",
        "பிரியா",
        "கவிதா",
        "தேவி",
        "சரஸ்வதி",
        "செல்வி",
        "அன்பு",
    ],
    surnames: &["குமார்", "ராமன்", "சுப்பிரமணியன்", "கிருஷ்ணன்", "முத்து", "சுந்தரம்"],
};

pub(crate) const BENGALI: NameTable = NameTable {
    male: &["অমিত", "সৌরভ", "বিশ্বজিৎ", "প্রণব", "রাহুল", "সুব্রত", "অরিজিৎ"],
    female: &["মৌসুমী", "রূপা", "অনন্যা", "শ্রেয়া", "দেবী", "সুস্মিতা", "পৌলমী"],
    surnames: &[
        "দাস",
        "ঘোষ",
        "বন্দ্যোপাধ্যায়",
        "চট্টোপাধ্যায়",
        "মুখোপাধ্যায়",
        "বসু",
        "সেন",
        "রায়",
    ],
};

pub(crate) const URDU: NameTable = NameTable {
    male: &["محمد", "عبداللہ", "عمران", "فیصل", "سلیم", "یوسف", "عارف"],
    female: &["فاطمہ", "عائشہ", "شبانہ", "زینب", "نسرین", "رخسانہ"],
    surnames: &["خان", "احمد", "انصاری", "قریشی", "شیخ", "صدیقی"],
};

/// Nicknames a registry operator sometimes types inside quotes ("Raju"), so names carry `"`.
pub(crate) const NICKNAMES: &[&str] =
    &["Raju", "Pinky", "Bablu", "Munna", "Chintu", "Guddu", "Sonu"];

pub(crate) fn names(script: Script) -> &'static NameTable {
    match script {
        Script::Latin => &LATIN,
        Script::Devanagari => &DEVANAGARI,
        Script::Tamil => &TAMIL,
        Script::Bengali => &BENGALI,
        Script::Urdu => &URDU,
    }
}

/// One state: population weight (lakh, 2011 census, rounded), its regional script and how often a
/// recipient's name is written in it, how often in Urdu script, and a few real districts with the
/// first three digits of their pincodes.
pub(crate) struct State {
    pub name: &'static str,
    pub weight: u32,
    pub script: Script,
    pub script_percent: u32,
    pub urdu_percent: u32,
    pub districts: &'static [(&'static str, u32)],
}

const fn st(
    name: &'static str,
    weight: u32,
    script: Script,
    script_percent: u32,
    urdu_percent: u32,
    districts: &'static [(&'static str, u32)],
) -> State {
    State {
        name,
        weight,
        script,
        script_percent,
        urdu_percent,
        districts,
    }
}

use Script::{Bengali, Devanagari, Latin, Tamil, Urdu};

#[rustfmt::skip]
pub(crate) const STATES: &[State] = &[
    st("Uttar Pradesh", 1998, Devanagari, 30, 5, &[("Lucknow", 226), ("Kanpur Nagar", 208), ("Varanasi", 221), ("Agra", 282), ("Prayagraj", 211), ("Gorakhpur", 273)]),
    st("Maharashtra", 1124, Devanagari, 20, 2, &[("Mumbai", 400), ("Pune", 411), ("Nagpur", 440), ("Nashik", 422), ("Thane", 400)]),
    st("Bihar", 1041, Devanagari, 30, 5, &[("Patna", 800), ("Gaya", 823), ("Muzaffarpur", 842), ("Bhagalpur", 812)]),
    st("West Bengal", 913, Bengali, 35, 2, &[("Kolkata", 700), ("Howrah", 711), ("Darjeeling", 734), ("Purba Bardhaman", 713)]),
    st("Madhya Pradesh", 726, Devanagari, 30, 2, &[("Bhopal", 462), ("Indore", 452), ("Jabalpur", 482), ("Gwalior", 474)]),
    st("Tamil Nadu", 721, Tamil, 35, 0, &[("Chennai", 600), ("Coimbatore", 641), ("Madurai", 625), ("Tiruchirappalli", 620)]),
    st("Rajasthan", 685, Devanagari, 30, 1, &[("Jaipur", 302), ("Jodhpur", 342), ("Udaipur", 313), ("Kota", 324)]),
    st("Karnataka", 611, Latin, 0, 2, &[("Bengaluru Urban", 560), ("Mysuru", 570), ("Belagavi", 590), ("Dakshina Kannada", 575)]),
    st("Gujarat", 604, Latin, 0, 1, &[("Ahmedabad", 380), ("Surat", 395), ("Vadodara", 390), ("Rajkot", 360)]),
    st("Andhra Pradesh", 494, Latin, 0, 2, &[("Visakhapatnam", 530), ("Krishna", 520), ("Guntur", 522), ("Chittoor", 517)]),
    st("Odisha", 420, Latin, 0, 0, &[("Khordha", 751), ("Cuttack", 753), ("Ganjam", 760)]),
    st("Telangana", 350, Latin, 0, 6, &[("Hyderabad", 500), ("Warangal", 506), ("Karimnagar", 505)]),
    st("Kerala", 334, Latin, 0, 0, &[("Thiruvananthapuram", 695), ("Ernakulam", 682), ("Kozhikode", 673)]),
    st("Jharkhand", 330, Devanagari, 25, 2, &[("Ranchi", 834), ("Dhanbad", 826), ("East Singhbhum", 831)]),
    st("Assam", 312, Bengali, 10, 0, &[("Kamrup Metropolitan", 781), ("Dibrugarh", 786), ("Cachar", 788)]),
    st("Punjab", 277, Latin, 0, 0, &[("Ludhiana", 141), ("Amritsar", 143), ("Jalandhar", 144)]),
    st("Chhattisgarh", 256, Devanagari, 25, 0, &[("Raipur", 492), ("Bilaspur", 495), ("Durg", 491)]),
    st("Haryana", 254, Devanagari, 20, 0, &[("Gurugram", 122), ("Faridabad", 121), ("Hisar", 125)]),
    st("Delhi", 168, Devanagari, 20, 3, &[("New Delhi", 110), ("South Delhi", 110), ("North West Delhi", 110)]),
    st("Jammu and Kashmir", 125, Urdu, 30, 0, &[("Srinagar", 190), ("Jammu", 180), ("Anantnag", 192)]),
    st("Uttarakhand", 101, Devanagari, 25, 0, &[("Dehradun", 248), ("Haridwar", 249), ("Nainital", 263)]),
    st("Himachal Pradesh", 69, Devanagari, 20, 0, &[("Shimla", 171), ("Kangra", 176), ("Mandi", 175)]),
    st("Tripura", 37, Bengali, 35, 0, &[("West Tripura", 799)]),
    st("Meghalaya", 30, Latin, 0, 0, &[("East Khasi Hills", 793)]),
    st("Manipur", 29, Latin, 0, 0, &[("Imphal West", 795)]),
    st("Nagaland", 20, Latin, 0, 0, &[("Kohima", 797)]),
    st("Goa", 15, Latin, 0, 0, &[("North Goa", 403), ("South Goa", 403)]),
    st("Arunachal Pradesh", 14, Latin, 0, 0, &[("Papum Pare", 791)]),
    st("Puducherry", 12, Tamil, 30, 0, &[("Puducherry", 605)]),
    st("Mizoram", 11, Latin, 0, 0, &[("Aizawl", 796)]),
    st("Chandigarh", 11, Latin, 0, 0, &[("Chandigarh", 160)]),
    st("Sikkim", 6, Latin, 0, 0, &[("East Sikkim", 737)]),
];

pub(crate) const STREETS: &[&str] = &[
    "MG Road",
    "Station Road",
    "Gandhi Road",
    "Main Road",
    "Temple Street",
    "Nehru Street",
    "Church Road",
    "Market Road",
    "Ring Road",
    "College Road",
    "Hospital Road",
    "Bazaar Street",
];

pub(crate) const APARTMENTS: &[&str] = &[
    "Sai Residency",
    "Green Park Apartments",
    "Shanti Niketan",
    "Lakshmi Enclave",
    "Sunrise Towers",
];

pub(crate) const LOCALITIES: &[&str] = &[
    "Gandhi Nagar",
    "Shastri Nagar",
    "Nehru Colony",
    "Ambedkar Nagar",
    "Rajiv Nagar",
    "Indira Colony",
    "Civil Lines",
    "Model Town",
    "Old Town",
    "Near Bus Stand",
    "Near Railway Station",
    "Sector 14",
    "Vivekananda Nagar",
    "Anna Nagar",
    "Salt Lake",
    "Banjara Hills",
];

/// Government facility kinds; a facility name is "<kind> <locality or district>".
pub(crate) const FACILITY_KINDS: &[&str] = &[
    "PHC",
    "CHC",
    "UPHC",
    "District Hospital",
    "Sub Centre",
    "Government Medical College",
    "CVC - UPHC",
    "Taluk Hospital",
];

pub(crate) const PRIVATE_HOSPITALS: &[&str] = &[
    "Apollo Hospitals",
    "Fortis Hospital",
    "Manipal Hospital",
    "Max Healthcare",
    "Narayana Health",
    "Aster Medcity",
    "KIMS Hospital",
    "St. John's Medical College Hospital",
];

pub(crate) const VACCINATOR_TITLES: &[&str] = &["", "", "ANM ", "Dr. ", "Sister ", "Staff Nurse "];

pub(crate) const COMORBIDITIES: &[&str] = &[
    "Diabetes",
    "Hypertension",
    "Chronic Kidney Disease",
    "Heart Failure",
    "COPD",
    "Cancer",
    "HIV infection",
    "Cirrhosis",
];

pub(crate) const GENDERS: &[(&str, u32)] = &[("Male", 505), ("Female", 490), ("Other", 5)];

/// Display-name weights for the catalogue vaccines (India's real mix is dominated by COVISHIELD and
/// COVAXIN). Names not listed get weight 1 so every catalogue vaccine still shows up.
pub(crate) const VACCINE_WEIGHTS: &[(&str, u32)] = &[
    ("COVISHIELD", 700),
    ("COVAXIN", 140),
    ("CORBEVAX", 40),
    ("Sputnik V", 20),
    ("COVOVAX", 20),
    ("ZyCoV-D", 20),
    ("Janssen", 10),
    ("Comirnaty", 10),
    ("Spikevax", 10),
];
