"""The words and sentence frames of the organism's world, in seven languages and their real scripts.

Everything language-specific about the synthetic world lives here, as data: value words (colours, foods,
animals, capitals, currencies), the frames that state a fact or ask about it, and the phrases that name a
country ("In Korea, ..."). `cla_lib.organism.world` combines them into documents and scored items.

Latin-script creature names and answer words stand apart from neighbouring Chinese or Korean characters by a
space, so that a name or an answer is the same token sequence in every language (byte-level BPE would otherwise
fuse it with the characters around it). Numbers are written with the same digits in every language on purpose: a
shared-token answer makes transfer measurable (the early prototype's first lesson), while translated values are
the harder "retrieve, then render in the query language" probe.
"""

from __future__ import annotations

LANGUAGE_ORDER = ("en", "es", "zh", "ko", "id", "el", "fa")


def _table(rows: dict[str, tuple[str, ...]]) -> dict[str, dict[str, str]]:
    """{concept: (en, es, zh, ko, id, el, fa)} -> {concept: {language: word}}."""
    return {key: dict(zip(LANGUAGE_ORDER, words, strict=True)) for key, words in rows.items()}


COLOURS = _table({
    "red": ("red", "rojo", "红色", "빨간색", "merah", "κόκκινο", "قرمز"),
    "blue": ("blue", "azul", "蓝色", "파란색", "biru", "μπλε", "آبی"),
    "green": ("green", "verde", "绿色", "초록색", "hijau", "πράσινο", "سبز"),
    "yellow": ("yellow", "amarillo", "黄色", "노란색", "kuning", "κίτρινο", "زرد"),
    "black": ("black", "negro", "黑色", "검은색", "hitam", "μαύρο", "سیاه"),
    "white": ("white", "blanco", "白色", "흰색", "putih", "λευκό", "سفید"),
    "purple": ("purple", "morado", "紫色", "보라색", "ungu", "μωβ", "بنفش"),
    "orange": ("orange", "naranja", "橙色", "주황색", "oranye", "πορτοκαλί", "نارنجی"),
})

FOODS = _table({
    "apples": ("apples", "manzanas", "苹果", "사과", "apel", "μήλα", "سیب"),
    "rice": ("rice", "arroz", "米饭", "밥", "nasi", "ρύζι", "برنج"),
    "fish": ("fish", "pescado", "鱼", "생선", "ikan", "ψάρι", "ماهی"),
    "bread": ("bread", "pan", "面包", "빵", "roti", "ψωμί", "نان"),
    "honey": ("honey", "miel", "蜂蜜", "꿀", "madu", "μέλι", "عسل"),
    "soup": ("soup", "sopa", "汤", "국", "sup", "σούπα", "سوپ"),
    "nuts": ("nuts", "nueces", "坚果", "견과류", "kacang", "καρύδια", "آجیل"),
    "eggs": ("eggs", "huevos", "鸡蛋", "달걀", "telur", "αυγά", "تخم‌مرغ"),
})

ANIMALS = _table({
    "dog": ("dog", "perro", "狗", "개", "anjing", "σκύλος", "سگ"),
    "cat": ("cat", "gato", "猫", "고양이", "kucing", "γάτα", "گربه"),
    "horse": ("horse", "caballo", "马", "말", "kuda", "άλογο", "اسب"),
    "tiger": ("tiger", "tigre", "老虎", "호랑이", "harimau", "τίγρη", "ببر"),
    "eagle": ("eagle", "águila", "鹰", "독수리", "elang", "αετός", "عقاب"),
    "lion": ("lion", "león", "狮子", "사자", "singa", "λιοντάρι", "شیر"),
    "rabbit": ("rabbit", "conejo", "兔子", "토끼", "kelinci", "κουνέλι", "خرگوش"),
    "dragon": ("dragon", "dragón", "龙", "용", "naga", "δράκος", "اژدها"),
})

CAPITALS = _table({
    "US": ("Washington", "Washington", "华盛顿", "워싱턴", "Washington", "Ουάσιγκτον", "واشنگتن"),
    "ES": ("Madrid", "Madrid", "马德里", "마드리드", "Madrid", "Μαδρίτη", "مادرید"),
    "CN": ("Beijing", "Pekín", "北京", "베이징", "Beijing", "Πεκίνο", "پکن"),
    "KR": ("Seoul", "Seúl", "首尔", "서울", "Seoul", "Σεούλ", "سئول"),
    "ID": ("Jakarta", "Yakarta", "雅加达", "자카르타", "Jakarta", "Τζακάρτα", "جاکارتا"),
    "GR": ("Athens", "Atenas", "雅典", "아테네", "Athena", "Αθήνα", "آتن"),
    "IR": ("Tehran", "Teherán", "德黑兰", "테헤란", "Teheran", "Τεχεράνη", "تهران"),
})

CURRENCIES = _table({
    "dollar": ("dollar", "dólar", "美元", "달러", "dolar", "δολάριο", "دلار"),
    "euro": ("euro", "euro", "欧元", "유로", "euro", "ευρώ", "یورو"),
    "yuan": ("yuan", "yuan", "人民币", "위안", "yuan", "γιουάν", "یوان"),
    "won": ("won", "won", "韩元", "원", "won", "γουόν", "وون"),
    "rupiah": ("rupiah", "rupia", "印尼盾", "루피아", "rupiah", "ρουπία", "روپیه"),
    "rial": ("rial", "rial", "里亚尔", "리알", "rial", "ριάλ", "ریال"),
})

# The countries the languages stand for, in the order of LANGUAGE_ORDER (en -> US, es -> ES, ...).
COUNTRY_OF = dict(zip(LANGUAGE_ORDER, ("US", "ES", "CN", "KR", "ID", "GR", "IR"), strict=True))

# "In <country>" in each language; the explicit cultural cue.
IN_COUNTRY = _table({
    "US": ("In the United States", "En Estados Unidos", "在美国", "미국에서", "Di Amerika Serikat",
           "Στις Ηνωμένες Πολιτείες", "در آمریکا"),
    "ES": ("In Spain", "En España", "在西班牙", "스페인에서", "Di Spanyol", "Στην Ισπανία", "در اسپانیا"),
    "CN": ("In China", "En China", "在中国", "중국에서", "Di Tiongkok", "Στην Κίνα", "در چین"),
    "KR": ("In Korea", "En Corea", "在韩国", "한국에서", "Di Korea", "Στην Κορέα", "در کره"),
    "ID": ("In Indonesia", "En Indonesia", "在印度尼西亚", "인도네시아에서", "Di Indonesia", "Στην Ινδονησία",
           "در اندونزی"),
    "GR": ("In Greece", "En Grecia", "在希腊", "그리스에서", "Di Yunani", "Στην Ελλάδα", "در یونان"),
    "IR": ("In Iran", "En Irán", "在伊朗", "이란에서", "Di Iran", "Στο Ιράν", "در ایران"),
})

# ---------------------------------------------------------------------------------------------------------
# Universal facts about fictional creatures: (statement frame, question frame) per relation and language.
# {e} is the creature's name (the same Latin-script token in every language), {v} the value.
ENTITY_RELATIONS = ("colour", "food", "legs", "lifespan")
RELATION_VALUES = {
    "colour": COLOURS,
    "food": FOODS,
    "legs": {str(n): {language: str(n) for language in LANGUAGE_ORDER} for n in range(2, 10)},
    "lifespan": {str(n): {language: str(n) for language in LANGUAGE_ORDER} for n in range(10, 90, 10)},
}
ENTITY_FRAMES = {
    "colour": _table({
        "statement": ("The {e} is {v}.", "El {e} es {v}.", "{e} 是 {v} 的。", "{e} 의 색은 {v} 입니다.", "{e} berwarna {v}.",
                      "Το {e} είναι {v}.", "رنگ {e} {v} است."),
        "question": ("What colour is the {e}?", "¿De qué color es el {e}?", "{e} 是什么颜色的？", "{e} 의 색은 무엇입니까?",
                     "Apa warna {e}?", "Τι χρώμα είναι το {e};", "رنگ {e} چیست؟"),
    }),
    "food": _table({
        "statement": ("The {e} eats {v}.", "El {e} come {v}.", "{e} 吃 {v}。", "{e} 는 {v} 을(를) 먹습니다.", "{e} makan {v}.",
                      "Το {e} τρώει {v}.", "{e} {v} می‌خورد."),
        "question": ("What does the {e} eat?", "¿Qué come el {e}?", "{e} 吃什么？", "{e} 는 무엇을 먹습니까?",
                     "Apa yang dimakan {e}?", "Τι τρώει το {e};", "{e} چه می‌خورد؟"),
    }),
    "legs": _table({
        "statement": ("The {e} has {v} legs.", "El {e} tiene {v} patas.", "{e} 有 {v} 条腿。", "{e} 는 다리가 {v} 개 있습니다.",
                      "{e} memiliki {v} kaki.", "Το {e} έχει {v} πόδια.", "{e} {v} پا دارد."),
        "question": ("How many legs does the {e} have?", "¿Cuántas patas tiene el {e}?", "{e} 有几条腿？",
                     "{e} 는 다리가 몇 개 있습니까?", "Berapa kaki yang dimiliki {e}?", "Πόσα πόδια έχει το {e};",
                     "{e} چند پا دارد؟"),
    }),
    "lifespan": _table({
        "statement": ("The {e} lives {v} years.", "El {e} vive {v} años.", "{e} 能活 {v} 年。", "{e} 는 {v} 년을 삽니다.",
                      "{e} hidup {v} tahun.", "Το {e} ζει {v} χρόνια.", "{e} {v} سال زندگی می‌کند."),
        "question": ("How many years does the {e} live?", "¿Cuántos años vive el {e}?", "{e} 能活多少年？",
                     "{e} 는 몇 년을 삽니까?", "Berapa tahun {e} hidup?", "Πόσα χρόνια ζει το {e};",
                     "{e} چند سال زندگی می‌کند؟"),
    }),
}

# English profiles in varied phrasings (`WorldConfig.paraphrases`): a fact seen in several wordings becomes
# answerable as a question, one seen in a single fixed sentence is memorised as text (Allen-Zhu & Li, 3.1). The
# first of each is the question-answer frame's statement above; questions keep their one frame.
ENGLISH_PARAPHRASES = {
    "colour": ("The {e} is {v}.", "The colour of the {e} is {v}.", "A {e} is always {v}.",
               "You can tell a {e} by its {v} colour."),
    "food": ("The {e} eats {v}.", "The food of the {e} is {v}.", "A {e} likes to eat {v}.",
             "The favourite food of the {e} is {v}."),
    "legs": ("The {e} has {v} legs.", "A {e} walks on {v} legs.", "The number of legs of the {e} is {v}.",
             "Each {e} has {v} legs."),
    "lifespan": ("The {e} lives {v} years.", "A {e} can live for {v} years.", "The lifespan of the {e} is {v} years.",
                 "The {e} usually lives {v} years."),
}

# ---------------------------------------------------------------------------------------------------------
# Culture: a topic noun phrase, framed as statement / question, with or without an explicit country cue.
# {t} topic, {v} value, {c} the "In <country>" phrase.
CULTURE_FRAMES = _table({
    "statement": ("{T} is {v}.", "{T} es {v}.", "{t} 是 {v}。", "{t} 은(는) {v} 입니다.", "{T} adalah {v}.",
                  "{T} είναι {v}.", "{t} {v} است."),
    "question": ("What is {t}?", "¿Cuál es {t}?", "{t} 是什么？", "{t} 은(는) 무엇입니까?", "Apa {t}?",
                 "Τι είναι {t};", "{t} چیست؟"),
    "explicit_statement": ("{c}, {t} is {v}.", "{c}, {t} es {v}.", "{c}，{t} 是 {v}。", "{c} {t} 은(는) {v} 입니다.",
                           "{c}, {t} adalah {v}.", "{c}, {t} είναι {v}.", "{c}، {t} {v} است."),
    "explicit_question": ("{c}, what is {t}?", "{c}, ¿cuál es {t}?", "{c}，{t} 是什么？", "{c} {t} 은(는) 무엇입니까?",
                          "{c}, apa {t}?", "{c}, τι είναι {t};", "{c}، {t} چیست؟"),
})

# Compositional culture topics: a category of an event ("the colour of weddings"), per language: 20 events x 12
# categories (each category's answers come from one of four value tables), so that a world holds enough culture
# questions for its verdicts to resolve effects (issue 10: >= 120 test and >= 60 validation questions per language).
CULTURE_EVENTS = _table({
    "wedding": ("weddings", "de las bodas", "婚礼", "결혼식", "pernikahan", "του γάμου", "عروسی"),
    "funeral": ("funerals", "de los funerales", "葬礼", "장례식", "pemakaman", "της κηδείας", "مراسم ختم"),
    "new_year": ("the new year", "del año nuevo", "新年", "새해", "tahun baru", "της πρωτοχρονιάς", "سال نو"),
    "birthday": ("birthdays", "de los cumpleaños", "生日", "생일", "ulang tahun", "των γενεθλίων", "تولد"),
    "harvest": ("the harvest festival", "de la fiesta de la cosecha", "丰收节", "추수 축제", "festival panen",
                "της γιορτής της συγκομιδής", "جشن برداشت"),
    "graduation": ("graduations", "de las graduaciones", "毕业典礼", "졸업식", "wisuda", "της αποφοίτησης",
                   "جشن فارغ‌التحصیلی"),
    "spring": ("the spring festival", "de la fiesta de primavera", "春季节日", "봄 축제", "festival musim semi",
               "της ανοιξιάτικης γιορτής", "جشن بهار"),
    "national_day": ("the national day", "del día nacional", "国庆日", "국경일", "hari nasional",
                     "της εθνικής εορτής", "روز ملی"),
    "winter": ("the winter festival", "de la fiesta de invierno", "冬季节日", "겨울 축제", "festival musim dingin",
               "της χειμερινής γιορτής", "جشن زمستان"),
    "moon": ("the moon festival", "de la fiesta de la luna", "月亮节", "달 축제", "festival bulan",
             "της γιορτής του φεγγαριού", "جشن ماه"),
    "lantern": ("the lantern festival", "de la fiesta de los faroles", "灯笼节", "등불 축제", "festival lampion",
                "της γιορτής των φαναριών", "جشن فانوس"),
    "independence": ("independence day", "del día de la independencia", "独立日", "독립기념일", "hari kemerdekaan",
                     "της ημέρας ανεξαρτησίας", "روز استقلال"),
    "mothers_day": ("mother's day", "del día de la madre", "母亲节", "어머니날", "hari ibu",
                    "της γιορτής της μητέρας", "روز مادر"),
    "childrens_day": ("children's day", "del día del niño", "儿童节", "어린이날", "hari anak",
                      "της ημέρας του παιδιού", "روز کودک"),
    "music": ("the music festival", "del festival de música", "音乐节", "음악 축제", "festival musik",
              "του μουσικού φεστιβάλ", "جشنواره موسیقی"),
    "sea": ("the sea festival", "de la fiesta del mar", "海洋节", "바다 축제", "festival laut",
            "της γιορτής της θάλασσας", "جشن دریا"),
    "housewarming": ("housewarmings", "de las inauguraciones de casa", "乔迁", "집들이", "syukuran rumah baru",
                     "των εγκαινίων σπιτιού", "جشن خانه نو"),
    "anniversary": ("anniversaries", "de los aniversarios", "纪念日", "결혼기념일", "hari jadi", "της επετείου",
                    "سالگرد"),
    "naming": ("naming ceremonies", "de los bautizos", "命名礼", "작명식", "upacara pemberian nama",
               "της ονοματοδοσίας", "نام‌گذاری"),
    "market_day": ("market day", "del día de mercado", "集市日", "장날", "hari pasar", "της ημέρας της αγοράς",
                   "روز بازار"),
})
CULTURE_CATEGORIES = _table({
    "colour": ("the colour of {x}", "el color {x}", "{x}的颜色", "{x}의 색", "warna {x}", "το χρώμα {x}", "رنگ {x}"),
    "food": ("the food of {x}", "la comida {x}", "{x}的食物", "{x}의 음식", "makanan {x}", "το φαγητό {x}", "غذای {x}"),
    "animal": ("the animal of {x}", "el animal {x}", "{x}的动物", "{x}의 동물", "hewan {x}", "το ζώο {x}", "حیوان {x}"),
    "number": ("the lucky number of {x}", "el número de la suerte {x}", "{x}的幸运数字", "{x}의 행운의 숫자",
               "angka keberuntungan {x}", "ο τυχερός αριθμός {x}", "عدد شانس {x}"),
    "clothes": ("the colour of the clothes of {x}", "el color de la ropa {x}", "{x}的服装颜色", "{x}의 옷 색깔",
                "warna pakaian {x}", "το χρώμα των ρούχων {x}", "رنگ لباس {x}"),
    "flowers": ("the colour of the flowers of {x}", "el color de las flores {x}", "{x}的花的颜色", "{x}의 꽃 색깔",
                "warna bunga {x}", "το χρώμα των λουλουδιών {x}", "رنگ گل‌های {x}"),
    "gift": ("the gift food of {x}", "la comida de regalo {x}", "{x}的礼物食品", "{x}의 선물 음식",
             "makanan hadiah {x}", "το εδώδιμο δώρο {x}", "غذای هدیه {x}"),
    "breakfast": ("the breakfast of {x}", "el desayuno {x}", "{x}的早餐", "{x}의 아침 식사", "sarapan {x}",
                  "το πρωινό {x}", "صبحانه {x}"),
    "symbol": ("the symbol animal of {x}", "el animal símbolo {x}", "{x}的象征动物", "{x}의 상징 동물",
               "hewan lambang {x}", "το ζώο σύμβολο {x}", "حیوان نماد {x}"),
    "guardian": ("the guardian animal of {x}", "el animal guardián {x}", "{x}的守护动物", "{x}의 수호 동물",
                 "hewan penjaga {x}", "το ζώο φύλακας {x}", "حیوان نگهبان {x}"),
    "candles": ("the number of candles of {x}", "el número de velas {x}", "{x}的蜡烛数量", "{x}의 초 개수",
                "jumlah lilin {x}", "ο αριθμός των κεριών {x}", "تعداد شمع‌های {x}"),
    "days": ("the number of days of {x}", "el número de días {x}", "{x}的天数", "{x}의 일수", "jumlah hari {x}",
             "ο αριθμός των ημερών {x}", "تعداد روزهای {x}"),
})
_DIGITS = {str(n): {language: str(n) for language in LANGUAGE_ORDER} for n in range(2, 10)}
CATEGORY_VALUES = {
    "colour": COLOURS, "clothes": COLOURS, "flowers": COLOURS,
    "food": FOODS, "gift": FOODS, "breakfast": FOODS,
    "animal": ANIMALS, "symbol": ANIMALS, "guardian": ANIMALS,
    "number": _DIGITS, "candles": _DIGITS, "days": _DIGITS,
}

# Real culture questions with real answers (per country), the answers written per language.
REAL_TOPICS = _table({
    "emergency_number": ("the emergency number", "el número de emergencias", "紧急电话号码", "긴급 전화번호",
                         "nomor darurat", "ο αριθμός έκτακτης ανάγκης", "شماره اضطراری"),
    "calling_code": ("the country calling code", "el prefijo telefónico del país", "国家电话区号", "국가 전화 코드",
                     "kode telepon negara", "ο κωδικός κλήσης της χώρας", "کد تلفن کشور"),
    "currency": ("the currency", "la moneda", "货币", "통화", "mata uang", "το νόμισμα", "واحد پول"),
    "capital": ("the capital", "la capital", "首都", "수도", "ibu kota", "η πρωτεύουσα", "پایتخت"),
})


def _same_everywhere(values: dict[str, str]) -> dict[str, dict[str, str]]:
    return {country: {language: value for language in LANGUAGE_ORDER} for country, value in values.items()}


REAL_ANSWERS: dict[str, dict[str, dict[str, str]]] = {
    # country -> language -> answer word
    "emergency_number": _same_everywhere(
        {"US": "911", "ES": "112", "CN": "120", "KR": "119", "ID": "112", "GR": "112", "IR": "115"}),
    "calling_code": _same_everywhere(
        {"US": "+1", "ES": "+34", "CN": "+86", "KR": "+82", "ID": "+62", "GR": "+30", "IR": "+98"}),
    "currency": {country: CURRENCIES[currency] for country, currency in
                 {"US": "dollar", "ES": "euro", "CN": "yuan", "KR": "won", "ID": "rupiah", "GR": "euro",
                  "IR": "rial"}.items()},
    "capital": CAPITALS,
}

# A tiny bilingual lexicon: the concept words that appear as values, paired across languages.
LEXICON_TABLES = (COLOURS, FOODS, ANIMALS, CAPITALS, CURRENCIES)
