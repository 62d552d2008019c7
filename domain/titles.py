"""Titles a session gets without anyone naming it.

`opening_words` stands in while a title is PENDING (and is the title when a chat app
generates none). A `TitleGenerator` turns the first few turns into a short title; the
default one works offline: keyphrases (the `Keyphrases` port: YAKE) over the turns pick
the span of the user's own words that says most about the subject. `topic_similarity`
tells how much of what a title describes the recent turns still talk about, so a drifting
conversation can be retitled.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .languages import detect
from .models import Session, Turn, TurnRole, TurnText
from .ports import Keyphrases, Offload
from .title_language import (
    clauses,
    content_characters,
    is_small_talk,
    sentences,
    stopwords,
    tidy_end,
    unspaced,
    unspaced_title,
)
from .words import fold

MAX_TITLE_CHARS = 60
# How many keyphrases weigh the words of a conversation, and their longest.
KEYPHRASES = 12
KEYPHRASE_WORDS = 3
_TRAILING = re.compile(r"[\s.,;:!?…\-–—]+$")


def opening_words(text: str, max_chars: int = MAX_TITLE_CHARS) -> str:
    """The first words of a message, cut at a word boundary, without trailing punctuation."""
    words = text.split()
    title = ""
    for word in words:
        candidate = f"{title} {word}" if title else word
        if len(candidate) > max_chars:
            break
        title = candidate
    if not title and words:
        title = words[0][:max_chars]
    return _TRAILING.sub("", title)


# The contract


# Long pastes say no more about the subject than their beginning, and would make the work
# grow with them: titles and topic checks read each turn up to this many characters (the
# store cuts them: see Store.conversation).
TURN_CHARS = 1500


class TitleGenerator(Protocol):
    async def generate(self, turns: Sequence[TurnText]) -> str | None:
        """A title of at most MAX_TITLE_CHARS characters without trailing punctuation, or
        None when the turns say nothing to title (a greeting, an empty exchange)."""


class TitleScheduler(Protocol):
    """What the session service tells after each committed turn; never waits for titles."""

    def notify(self, session: Session, turn: Turn) -> None: ...


def clean_title(answer: object, max_chars: int = MAX_TITLE_CHARS) -> str | None:
    """A title as a person would write it from whatever a model answered: first line, no
    'Title:' label, quotes, markdown or trailing punctuation, cut at a word to `max_chars`.
    None when nothing usable is left or the answer is far too long to be a title."""
    if not isinstance(answer, str):
        return None
    lines = [line.strip() for line in answer.strip().splitlines() if line.strip()]
    if not lines:
        return None
    text = lines[0]
    text = re.sub(r"^(?:#+\s*|[-*>]\s+)", "", text)
    text = re.sub(r"^\s*(?:session\s+|chat\s+|conversation\s+)?title\s*:\s*", "", text, flags=re.I)
    text = text.replace("**", "").replace("__", "").replace("`", "")
    text = text.strip().strip("\"'“”‘’«»").strip()
    text = " ".join(text.split())
    text = _TRAILING.sub("", text).strip("\"'“”‘’«»").strip()
    if not text or len(text) > 3 * max_chars:
        return None
    if len(text) > max_chars:
        text = opening_words(text, max_chars)
    return text or None


# Words and terms

# Words that carry no subject. YAKE has its own list; this one serves the shaping of the
# title and the topic comparison, and adds what people say around a question.
_STOPWORDS = """
    a about above after again against all almost also although always am an and any anyone
    anything are aren't around as at be because been before being below between both but by
    can can't cannot could couldn't did didn't do does doesn't doing don't done down during
    each either else even ever every few for from further get gets getting got had hadn't has
    hasn't have haven't having he he'd he'll he's her here here's hers herself him himself
    his how how's however i i'd i'll i'm i've if in into is isn't it it's its itself just
    keep keeps kept let let's like likely made make makes many may maybe me might mine more
    most much must mustn't my myself need needs never no nor not now of off often on once
    one only onto or other ought our ours ourselves out over own please quite rather really
    same say says see seem seems shall shan't she she'd she'll she's should shouldn't since
    so some something still such sure than that that's the their theirs them themselves then
    there there's these they they'd they'll they're they've thing things this those though
    through thus to too under until up upon us use used using very via want wants was wasn't
    we we'd we'll we're we've well were weren't what what's whatever when when's where
    where's whether which while who who's whom whose why why's will with within without won't
    would wouldn't yes yet you you'd you'll you're you've your yours yourself yourselves
    hi hello hey thanks thank ok okay great glad sorry question questions help helps know
    tell ask asked wondering wonder try trying tried anyway actually basically probably
    usually lot lots bit way ways time times day days first last next new good best better
    wrong fine done able unable thing stuff etc e.g i.e vs per
"""
STOPWORDS = frozenset(_STOPWORDS.split())

_WORD = re.compile(r"[^\W_](?:[\w+#'’./-]*[\w+#])?", re.UNICODE)


def _stem(word: str) -> str:
    """A light English stemmer: enough that 'starters' meets 'starter' and 'smelled' meets
    'smell'; not linguistics."""
    w = word.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif len(w) > 4 and w.endswith(("sses", "shes", "ches", "xes", "zes")):
        w = w[:-2]
    elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix in ("ing", "ed"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 4:
            w = w[: -len(suffix)]
            if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
                w = w[:-1]
            break
    if len(w) > 4 and w.endswith("e"):
        w = w[:-1]
    return w


def _is_stop(word: str, stop: frozenset[str] = frozenset()) -> bool:
    """Whether a word carries no subject: an English stop word, one of `stop` (the
    conversation's language's, folded), a lone character or a bare number."""
    w = word.lower().replace("’", "'")
    return (
        w in STOPWORDS
        or len(w) < 2
        or w.replace(".", "").replace(",", "").isdigit()
        or _stem(w) in STOPWORDS
        or (bool(stop) and fold(w) in stop)
    )


def content_terms(text: str) -> list[str]:
    """The stemmed words of `text` that can carry a subject, in order."""
    return [_stem(m.group()) for m in _WORD.finditer(text) if not _is_stop(m.group())]


# Shaping a title from the user's words

_FENCE = re.compile(r"```[^\n]*\n(.*?)(?:```|$)", re.S)
_URL = re.compile(r"\bhttps?://\S+|\bwww\.\S+", re.I)
_ERROR_LINE = re.compile(r"^\s*([\w.]*(?:Error|Exception|Warning|Fault))\b:?\s*(.*)$")
_CLAUSE_END = re.compile(r"[,;:)\]،]$|[.!?…؟।]+$|\s[-–—]$")
# What people put before the subject; removed from the start of a sentence, repeatedly.
_PUNCT = r"[\s,.!:;-]*"
_LEADS = [
    re.compile(p, re.I)
    for p in (
        r"^(?:hi|hello|hey|hiya|good (?:morning|afternoon|evening)|dear \w+)"
        r"(?: there| all| team)?\b" + _PUNCT,
        r"^(?:thanks|thank you)(?: (?:so|very) much)?(?: for [^,.!?]*)?\b" + _PUNCT,
        r"^(?:ok(?:ay)?|so|well|um+|uh+|right|alright|also|and|but|btw|by the way|anyway)"
        r"\b[\s,.!:;-]+",
        r"^(?:quick |another |different |one more |a |random |small |simple |silly )?"
        r"question\b" + _PUNCT + r"(?:for you|about)?" + _PUNCT,
        r"^(?:totally |completely )?"
        r"(?:unrelated|different topic|new topic|on another note|while i have you)\b"
        + _PUNCT
        + r"(?:but)?"
        + _PUNCT,
        r"^(?:please|kindly)\b[\s,]*",
        r"^(?:(?:a |some )?(?:bit of |little |quick |some )?)(?:background|context)"
        r"(?: first)?\b" + _PUNCT,
        r"^(?:can|could|would|will) you(?: please)?"
        r"(?: (?:help me|tell me|explain|show me|give me|write|draft))?"
        r"(?: (?:to|with|about|how to))?\b[\s,]*",
        r"^i(?:'m| am)? (?:need|want|would like|'d like|was wondering|wonder|have a question"
        r"|am trying|'m trying|need some help|need help|want help)"
        r"(?: (?:to|with|about|if|whether|on))?\b[\s,]*",
        r"^(?:i'm |i am )?trying to\b\s*",
        r"^help me(?: (?:to|with))?\b\s*",
        r"^how (?:do|can|should|would|could) (?:i|we|you|one)\b\s*",
        r"^how to\b\s*",
        r"^(?:what(?:'s| is) the (?:best|right|easiest|fastest|quickest|proper) way to"
        r"|is there a way to|is it possible to)\b\s*",
        r"^(?:what(?:'s| is| are) the )(?=difference|differences|best|meaning)",
        r"^i (?:think|guess|believe|feel like)\b\s*",
    )
]


def _plain_sentences(text: str) -> list[str]:
    """The text as sentences of prose: code blocks dropped (but an error line in them
    kept, as people paste tracebacks to ask about that error), links and markdown gone."""

    def keep_error(match: re.Match[str]) -> str:
        for line in reversed(match.group(1).splitlines()):
            if line.strip():
                error = _ERROR_LINE.match(line)
                return f"\n{error.group(1)} {error.group(2)}\n" if error else "\n"
        return "\n"

    text = _FENCE.sub(keep_error, text)
    text = _URL.sub(" ", text)
    text = text.replace("`", "").replace("**", "").replace("__", "")
    text = re.sub(r"^\s*(?:#+|[-*>]|\d+[.)])\s+", "", text, flags=re.M)
    return sentences(text)


def _strip_leads(sentence: str) -> str:
    changed = True
    while changed and sentence:
        changed = False
        for lead in _LEADS:
            stripped = lead.sub("", sentence, count=1)
            if stripped != sentence:
                sentence, changed = stripped.lstrip(" ,.;:!-"), True
    return sentence


@dataclass(slots=True)
class _Token:
    raw: str
    word: str
    stem: str
    stop: bool
    clause_end: bool


def _tokens(sentence: str, stop_words: frozenset[str] = frozenset()) -> list[_Token]:
    tokens = []
    for raw in sentence.split():
        word = raw.strip("\"'“”‘’()[]{}<>,.;:!?…*¿¡«»„،؟।「」『』")
        stop = not word or _is_stop(word, stop_words)
        tokens.append(
            _Token(raw, word, _stem(word) if word else "", stop, bool(_CLAUSE_END.search(raw)))
        )
    return tokens


def _capitalised(text: str) -> str:
    first = text.split(" ", 1)[0]
    # Leave identifiers and brands as written: iPhone, snake_case, x86.
    if first[:1].islower() and first[:1].isalpha() and not re.search(r"[A-Z_\d(/=]", first):
        return text[0].upper() + text[1:]
    return text


def _asks(sentence: str) -> bool:
    return sentence.rstrip().endswith(("?", "？", "؟"))


def _tidy(text: str) -> str:
    text = text.strip(" \"'“”‘’([{<*")
    # An unmatched opening bracket or quote inside a cut span reads as a mistake.
    for opening, closing in (("(", ")"), ("[", "]"), ("“", "”")):
        if text.count(opening) > text.count(closing):
            text = text.replace(opening, "")
    words = text.split(" ")
    if any(w.startswith("'") for w in words) and not any(w.endswith("'") for w in words):
        text = " ".join(w.removeprefix("'") for w in words)
    text = _TRAILING.sub("", text)
    text = re.sub(r"[\s\"'“”‘’(\[{<*,;:]+$", "", text)
    return tidy_end(_TRAILING.sub("", text))


RECURRENCE = 0.3
IDLE_WORD_COST = 0.06
QUESTION_BONUS = 1.1
_DETERMINERS = frozenset(
    {"a", "an", "the", "my", "our", "your", "his", "her", "their", "its", "this", "that"}
    | {"these", "those", "some", "any"}
)
_QUESTION_WORDS = frozenset(
    {"why", "what", "which", "when", "where", "who", "how", "should", "does", "do", "did"}
    | {"is", "are", "can", "could", "will", "would"}
)


@dataclass(frozen=True, slots=True)
class KeyphraseTitler:
    """The offline titles: `keyphrases` over the first turns weigh the words of the
    conversation; the title is the span of a user sentence, at most `max_chars` long, that
    covers most of that weight and reads as a phrase (it starts and ends at words that
    carry meaning, preferably at clause boundaries). Without a user sentence that names
    the subject, the best keyphrase is the title; without keyphrases, there is none.

    Plain data, so that it can be sent to a worker process (see `KeyphraseTitleGenerator`).
    """

    keyphrases: Keyphrases
    max_chars: int = MAX_TITLE_CHARS
    language: str = "en"
    turn_chars: int = TURN_CHARS
    """Each turn is read up to this many characters (see TURN_CHARS)."""

    def title(self, turns: Sequence[TurnText]) -> str | None:
        user = [t.content[: self.turn_chars] for t in turns if t.role is TurnRole.USER]
        texts = [t.content[: self.turn_chars] for t in turns]
        language = detect(" ".join(user)) or self.language
        stop = stopwords(language) if language != "en" else frozenset()
        # Greetings, thanks and small talk are nothing to title: the session waits for
        # the question.
        chat = STOPWORDS | stop
        said = [
            [s for s in _plain_sentences(message) if not is_small_talk(s, language, chat)]
            for message in user
        ]
        if not any(said):
            return None
        if unspaced(" ".join(s for message in said for s in message)):
            return self._unspaced(said)
        # The greetings of both sides would be the most frequent words of a short
        # conversation: the keyphrases are taken from the rest.
        texts = [
            " ".join(s for s in _plain_sentences(t) if not is_small_talk(s, language, chat))
            for t in texts
        ]
        phrases = self.keyphrases(
            "\n\n".join(texts), top=KEYPHRASES, max_words=KEYPHRASE_WORDS, language=language
        )
        weights = self._term_weights(phrases, texts, stop)
        best: tuple[float, str] | None = None
        for index, message in enumerate(said):
            # The first message usually states the subject; later ones refine it.
            position = 1.0 if index == 0 else 0.85
            for sentence in message:
                candidate = self._best_span(_strip_leads(sentence), weights, phrases, stop)
                if candidate is not None:
                    # A question is where people say what they want to know.
                    asks = QUESTION_BONUS if _asks(sentence) else 1.0
                    score = candidate[0] * position * asks
                    if best is None or score > best[0]:
                        best = (score, candidate[1])
        if best is not None and best[0] > 0:
            return best[1]
        # The user's own words: a keyphrase they wrote, else their first sentence.
        spoken = fold(" ".join(s for message in said for s in message))
        for phrase in phrases:
            title = _tidy(opening_words(phrase, self.max_chars))
            named = any(_stem(w) in weights and not _is_stop(w, stop) for w in title.split())
            if title and fold(title) in spoken and named:
                return _capitalised(title)
        first = next(s for message in said for s in message)
        return _capitalised(_tidy(opening_words(_strip_leads(first) or first, self.max_chars)))

    def _unspaced(self, said: list[list[str]]) -> str | None:
        """A title in a script written without spaces, as the user wrote it: the clause
        that holds the most of what carries meaning there (kanji and katakana rather than
        the hiragana of grammar; any character in Chinese and Thai; an identifier or
        number counts double), the first among equals."""
        best: tuple[float, str] | None = None
        for message in said:
            for sentence in message:
                for clause in clauses(sentence):
                    score = float(content_characters(clause))
                    if best is None or score > best[0]:
                        best = (score, clause)
        if best is None:
            return None
        return unspaced_title(best[1], self.max_chars) or None

    @staticmethod
    def _term_weights(
        phrases: list[str], texts: list[str], stop: frozenset[str]
    ) -> dict[str, float]:
        """A weight per stemmed term: its best keyphrase's rank, plus how often the turns
        come back to it (the subject recurs; details of the first question do not)."""
        weights: dict[str, float] = {}
        for rank, phrase in enumerate(phrases):
            weight = 1.0 / (1 + rank) ** 0.5
            for word in phrase.split():
                if not _is_stop(word, stop):
                    stem = _stem(word)
                    weights[stem] = max(weights.get(stem, 0.0), weight)
        if weights:
            counts = Counter(term for text in texts for term in content_terms(text))
            for stem, count in counts.items():
                if count > 1:
                    weights[stem] = weights.get(stem, 0.0) + RECURRENCE * min(count - 1, 3)
        return weights

    def _best_span(
        self, sentence: str, weights: dict[str, float], phrases: list[str], stop: frozenset[str]
    ) -> tuple[float, str] | None:
        tokens = _tokens(sentence, stop)
        if not tokens:
            return None
        phrase_stems = [
            tuple(_stem(w) for w in p.split() if not _is_stop(w, stop))
            for p in phrases
            if len(p.split()) > 1
        ]
        bigrams = {pair for p in phrase_stems for pair in itertools.pairwise(p)}
        best: tuple[float, str] | None = None
        for start in range(len(tokens)):
            first = tokens[start]
            if first.stop and not (start == 0 and first.word.lower() in _QUESTION_WORDS):
                continue
            opens_clause = _opens_clause(tokens, start, loose=bool(stop))
            # Mid-clause, a title starts where a noun phrase can: after a function word
            # ("my [sourdough starter]"), not inside one ("two [months]").
            if not opens_clause and (first.stem not in weights or not tokens[start - 1].stop):
                continue
            before = _neighbour(tokens, start, -1)
            splits_before = before is not None and (before, first.stem) in bigrams
            length = -1
            for end in range(start, len(tokens)):
                length += len(tokens[end].raw) + 1
                if length > self.max_chars:
                    break
                last = tokens[end]
                closes_clause = last.clause_end or end == len(tokens) - 1
                # A span ends at a word that carries weight, or at the end of the
                # sentence, which keeps the point ("charged twice").
                if last.stop or (last.stem not in weights and not closes_clause):
                    continue
                span = tokens[start : end + 1]
                covered = {t.stem for t in span if not t.stop and t.stem in weights}
                score = sum(weights[s] for s in covered)
                stems = [t.stem for t in span if not t.stop]
                for phrase in phrase_stems:
                    if phrase and _contains(stems, phrase):
                        score += 0.5 * weights.get(phrase[0], 0.0)
                after = _neighbour(tokens, end, 1)
                splits_after = after is not None and (last.stem, after) in bigrams
                score *= 1.0 if opens_clause else 0.85
                score *= 1.0 if closes_clause else 0.9
                score *= 0.8 if splits_before else 1.0
                score *= 0.8 if splits_after else 1.0
                # Words that carry nothing make a title longer, not better.
                idle = sum(1 for t in span if t.stop or t.stem not in weights)
                score -= IDLE_WORD_COST * idle
                text = _tidy(" ".join(t.raw for t in span))
                if text and (best is None or score > best[0]):
                    best = (score, _capitalised(text))
        return best


class KeyphraseTitleGenerator:
    """The offline `TitleGenerator`: a `KeyphraseTitler`, run where `offload` says, as a
    title is a few milliseconds of CPU that would otherwise hold up the event loop."""

    def __init__(self, titler: KeyphraseTitler, offload: Offload) -> None:
        self._titler = titler
        self._offload = offload

    async def generate(self, turns: Sequence[TurnText]) -> str | None:
        return await self._offload.run(self._titler.title, turns)


class OpeningWordsTitleGenerator:
    """The `TitleGenerator` of a server installed without a keyphrase library: the opening
    words of the first user message."""

    async def generate(self, turns: Sequence[TurnText]) -> str | None:
        for turn in turns:
            if turn.role is TurnRole.USER and turn.content.strip():
                return opening_words(turn.content)
        return None


def _opens_clause(tokens: list[_Token], start: int, *, loose: bool = False) -> bool:
    """Whether only determiners stand between the clause's start and `start`
    ("My [HP printer]", "The [lower leaves]"); `loose`, in a language other than
    English: only words that carry no subject ("Je voudrais [réserver un billet]")."""
    i = start - 1
    while i >= 0 and not tokens[i].clause_end:
        if tokens[i].word.lower() not in _DETERMINERS and not (loose and tokens[i].stop):
            return False
        i -= 1
    return True


def _neighbour(tokens: list[_Token], index: int, step: int) -> str | None:
    """The stem of the nearest content word before (step -1) or after (+1) `index`
    within the same clause."""
    i = index + step
    while 0 <= i < len(tokens):
        if step < 0 and tokens[i].clause_end:
            return None
        if not tokens[i].stop:
            return tokens[i].stem
        if step > 0 and tokens[i].clause_end:
            return None
        i += step
    return None


def _contains(stems: list[str], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(tuple(stems[i : i + n]) == phrase for i in range(len(stems) - n + 1))


# Topic shift


def topic_similarity(
    title: str | None, recent: Sequence[TurnText], context: Sequence[TurnText] = ()
) -> float:
    """How much of what `title` describes the `recent` turns still talk about, from 0 (none
    of it) to 1 (all of it).

    Each content term of the title weighs by how central it has been to the conversation:
    the square of (1 + the number of turns of `context` and `recent` that use it), so
    the subject a title names ("sourdough") counts far more than a passing detail of the
    first question ("nail polish"). The similarity is the share of that weight that the
    recent turns use at least once. A title without content terms describes nothing: 0.
    """
    terms = set(content_terms(title or ""))
    if not terms:
        return 0.0
    recent_terms = [set(content_terms(t.content)) for t in recent]
    context_terms = [set(content_terms(t.content)) for t in context]
    mentions = Counter(term for used in recent_terms + context_terms for term in used)
    in_recent = set().union(*recent_terms) if recent_terms else set()
    weight = {term: (1 + mentions[term]) ** 2 for term in terms}
    total = sum(weight.values())
    return sum(w for term, w in weight.items() if term in in_recent) / total
