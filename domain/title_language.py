"""What titles need to know of the language a conversation is in: where its sentences
end, which of them are only greetings, thanks or small talk, which words carry no subject,
how its punctuation closes a title, and how a title is cut from text written without
spaces (Chinese, Japanese, Thai), where the title is an exact piece of what the user
wrote.
"""

from __future__ import annotations

import unicodedata

import regex
import stopwordsiso

from .words import fold, words

# Where a sentence ends, in every script: the mark stays with its sentence.
_SENTENCE_END = regex.compile(r"(?<=[.!?。！？؟।॥…])\s*|\n+")
_UNSPACED = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}]")
_LETTER = regex.compile(r"\p{L}")
# A title written without spaces is cut at the last of these that fits (a clause ends).
_CLAUSE_MARKS = "、，,；;：:"
DENSE_SCRIPT_RATIO = 2
_THAI = regex.compile(r"\p{Thai}")
# Polite particles that close a Thai sentence, like a full stop.
_THAI_PARTICLES = regex.compile(r"(?:ครับ|ค่ะ|คะ|จ้ะ|จ้า|นะ)+$")
# Paired marks: a title keeps both or neither.
PAIRS = (
    ("¿", "?"),
    ("¡", "!"),
    ("«", "»"),
    ("「", "」"),
    ("『", "』"),
    ("“", "”"),
    ("„", "“"),
    ("(", ")"),
    ("[", "]"),
    ("（", "）"),
    ("《", "》"),
    ("【", "】"),
)

# Greetings, thanks and small talk, folded (domain/words.py), in the languages chats are
# held in; a sentence made only of these (and words that carry nothing) says nothing to
# title. Scripts written without spaces list whole phrases.
_SMALL_TALK_WORDS = frozenset(
    words(
        """
        hi hello hey hiya howdy yo greetings morning afternoon evening good day night
        thanks thank thx ty cheers bye goodbye welcome there everyone all team folks
        how are you doing going it's its what's up whats sup fine ok okay great nice
        please help me question can could you something anything quick
        hallo servus moin guten morgen tag abend danke schön schon vielen dank wie geht
        gehts es dir ihnen bitte grüß gott
        bonjour salut bonsoir coucou merci beaucoup ça ca va comment allez vous
        hola buenos buenas días dias tardes noches gracias muchas qué que tal cómo como
        estás estas está esta
        olá ola oi bom boa dia tarde noite obrigado obrigada tudo bem
        ciao buongiorno buonasera grazie mille come stai
        привет здравствуйте здравствуй добрый доброе утро день вечер спасибо большое
        как дела ты вы
        merhaba selam günaydın gunaydin iyi günler akşamlar teşekkürler teşekkür ederim
        sağ ol nasılsın nasılsınız
        مرحبا مرحباً السلام عليكم أهلا اهلا صباح مساء الخير شكرا شكراً كيف حالك
        नमस्ते नमस्कार धन्यवाद शुक्रिया आप कैसे हैं हो
        안녕하세요 안녕 감사합니다 고마워요 고맙습니다 잘 지내요 지내세요 반가워요
        반갑습니다 처음 뵙겠습니다
        सुप्रभात शुभ प्रभात संध्या शुभ रात्रि
        """
    )
)
_SMALL_TALK_PHRASES = tuple(
    sorted(
        (
            *("你好", "您好", "大家好", "早上好", "晚上好", "下午好", "谢谢", "多谢", "嗨"),
            *("哈喽", "你好吗", "在吗", "こんにちは", "こんばんは", "おはようございます"),
            *("おはよう", "ありがとうございます", "ありがとう", "どうも", "元気ですか"),
            *("よろしくお願いします", "はじめまして", "สวัสดีครับ", "สวัสดีค่ะ", "สวัสดี"),
            *("หวัดดีครับ", "หวัดดีค่ะ", "หวัดดี", "ขอบคุณครับ", "ขอบคุณค่ะ", "ขอบคุณ"),
            "สบายดีไหม",
        ),
        key=len,
        reverse=True,  # the longest first: "สวัสดีครับ" before "สวัสดี"
    )
)
# What is left of a sentence once its punctuation and spaces go.
_PUNCTUATION = regex.compile(r"[\p{P}\p{S}\s]+")


def sentences(text: str) -> list[str]:
    """The sentences of `text`, each with its closing mark, whitespace collapsed."""
    found = []
    for part in _SENTENCE_END.split(text):
        part = " ".join(part.split())
        if part:
            found.append(part)
    return found


def unspaced(text: str) -> bool:
    """Whether `text` is mostly written without spaces: a character of those scripts says
    about as much as a word of two or three letters elsewhere, so a third of the letters
    is enough ("我想学Python编程")."""
    letters = _LETTER.findall(text)
    return bool(letters) and sum(1 for c in letters if _UNSPACED.match(c)) * 3 >= len(letters)


def is_small_talk(sentence: str, language: str, stop: frozenset[str]) -> bool:
    """Whether a sentence only greets, thanks or chats (nothing of it names a subject)."""
    rest = _PUNCTUATION.sub("", sentence)
    for phrase in _SMALL_TALK_PHRASES:
        rest = rest.replace(phrase, "")
    if not rest:
        return True
    if unspaced(rest):
        return False
    return all(w in _SMALL_TALK_WORDS or w in stop for w in words(sentence))


_stopwords: dict[str, frozenset[str]] = {}


def stopwords(language: str) -> frozenset[str]:
    """Words of `language` that carry no subject, folded (stopwords-iso's lists)."""
    found = _stopwords.get(language)
    if found is None:
        listed = stopwordsiso.stopwords(language) if stopwordsiso.has_lang(language) else ()
        found = _stopwords[language] = frozenset(fold(w) for w in listed)
    return found


def tidy_end(title: str) -> str:
    """The title without trailing punctuation of any script, and with paired marks kept
    in pairs: an opening mark whose closing one went (¿ without ?) goes too."""
    title = title.strip()
    while title and _trailing(title[-1]):
        title = title[:-1].rstrip()
    for opening, closing in PAIRS:
        if title.count(opening) != title.count(closing) and opening != closing:
            if title.count(opening) > title.count(closing):
                title = title.replace(opening, "", title.count(opening) - title.count(closing))
            else:
                title = _drop_last(title, closing, title.count(closing) - title.count(opening))
    return title.strip()


def _trailing(char: str) -> bool:
    """Punctuation that ends a title badly: any but a closing mark of a kept pair."""
    if char.isspace():
        return True
    if not unicodedata.category(char).startswith("P"):
        return False
    return char not in {closing for _, closing in PAIRS if closing not in "?!"}


def _drop_last(text: str, mark: str, count: int) -> str:
    for _ in range(count):
        i = text.rfind(mark)
        text = text[:i] + text[i + 1 :]
    return text


_CONTENT = regex.compile(
    r"[\p{Han}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Latin}ー]|(?P<digit>\d)"
)


def content_characters(text: str) -> int:
    """How much of a text written without spaces carries meaning: its characters but
    Japanese hiragana (particles and endings), digits twice (an identifier, a number)."""
    return sum(2 if m.group("digit") else 1 for m in _CONTENT.finditer(text))


def clauses(sentence: str) -> list[str]:
    """The clauses of a sentence written without spaces (cut at its commas and colons),
    each as written."""
    found, start = [], 0
    for i, char in enumerate(sentence):
        if char in _CLAUSE_MARKS:
            found.append(sentence[start:i])
            start = i + 1
    found.append(sentence[start:])
    return [c.strip() for c in found if _LETTER.search(c)]


def unspaced_title(sentence: str, max_chars: int) -> str:
    """A title of a sentence written without spaces: the sentence itself when it fits,
    else its longest opening that ends at a clause mark or a space, else at a change of
    script (a Japanese particle after a word in kanji or katakana), else at the limit;
    always an exact piece of the sentence, marks at its ends and Thai's closing polite
    particles dropped. Chinese and Japanese say as much as other scripts in fewer
    characters: their limit is `max_chars` / DENSE_SCRIPT_RATIO."""
    text = tidy_end(sentence)
    text = _THAI_PARTICLES.sub("", text) or text
    if not _THAI.search(text):
        max_chars //= DENSE_SCRIPT_RATIO
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    space = head.rfind(" ")
    if space > max_chars // 3:
        return tidy_end(head[:space])
    for i in range(len(head) - 1, max_chars // 3, -1):
        if head[i] in _CLAUSE_MARKS:
            return tidy_end(head[:i])
    for i in range(len(head) - 1, max_chars // 2, -1):
        if _script(head[i]) != _script(text[i + 1]) and _script(text[i + 1]) == "Hiragana":
            return tidy_end(head[: i + 1])
    return tidy_end(head)


def _script(char: str) -> str:
    for name in ("Han", "Hiragana", "Katakana", "Thai"):
        if regex.match(rf"\p{{{name}}}", char):
            return name
    return "other"
