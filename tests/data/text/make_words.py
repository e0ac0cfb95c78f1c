#!/usr/bin/env python3
"""Writes the token-text fixtures tests/test_data_text.c reads, with Python's own str.lower()
and str.split() as the reference for libenn's word tokeniser (a WikiText line is
`line.lower().split()`).

    /usr/bin/python3 tests/data/text/make_words.py   # from the repository root

words.txt      UTF-8 text: many scripts and cases, Greek sigma contexts, every Unicode
               whitespace character as a separator, look-alikes that are not whitespace.
words.lower    the expected tokens, one a line: line.lower().split() for each line
words.keep     the same without lower-casing (enn_text_options.keep_case): line.split()
invalid.txt    text with bytes that are not UTF-8
invalid.lower  its tokens as Python gives them when it decodes with errors="surrogateescape"
               (each stray byte a character that is neither cased nor a space, written back
               as the same byte)
"""
import os
import sys
import unicodedata

here = os.path.dirname(os.path.abspath(__file__))
CODE_POINTS = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
SPACES = [chr(c) for c in CODE_POINTS if chr(c).isspace()]
SEPARATORS = [s for s in SPACES if s != "\n"]  # within a line (a lone "\r" among them)
# Not whitespace to Python, though some look like it or once were (U+180E until Unicode 6.3).
NOT_SPACES = ["\u200b", "\u2060", "\ufeff", "\u180e", "\u00ad", "\u200d"]


def joined(words, start=0):
    """The words separated by every kind of whitespace in turn (runs of two now and then)."""
    out = []
    for i, w in enumerate(words):
        out.append(w)
        k = start + i
        out.append(SEPARATORS[k % len(SEPARATORS)] + (SEPARATORS[(k * 7) % len(SEPARATORS)] if k % 5 == 0 else ""))
    return "".join(out)


def case_ignorable(c):
    """Python's view: a character its Final_Sigma rule skips (as case_ignorable_sample shows)."""
    return ("A" + c + "\u03a3").lower()[-1] == "\u03c2" and (c + "\u03a3").lower()[-1] != "\u03c2"


def lines():
    yield "The quick brown FOX jumps over the lazy DOG ."
    # Greek: final sigma at a word's end, in the middle, alone, around marks and apostrophes
    # (U+0027 is Case_Ignorable, and Python's rule skips it).
    yield ("ΟΔΥΣΣΕΥΣ ΟΔΥΣΣΕΥΣ. Σ ΣΑ ΑΣΑ ΑΣ' Α'Σ ΑΣ'Α ΑΣ\u0301 ΑΣ\u0301Α Α\u0301Σ ΑΣ\u00adΑ ΑΣ\u00ad ΑΣ:Β ΑΣ.Β "
           "ΑΣ- ΑΣ1 1Σ ΑΣΣ ΣΣ ᾈΣ ΆΣΣ ὈΔΥΣΣΕΎΣ ΑΣ\u2019 ΑΣ\u2019Α \u02b0Σ Α\u02b0Σ ΑΣ\u02b0 ΑΣ\u0345Α")
    yield "İSTANBUL İ Iı IİI DİYARBAKIR ǅemal ǄEMAL ǈubljana ǋ Ǳ ǲ ǳ"
    yield "Ꭰ ᏣᎳᎩ ᎠᏍᎦᏯ Ᏸ ᏸ Ᏽ ꭰꭱ"                                            # Cherokee
    yield "ᲛᲗᲐᲕᲠᲣᲚᲘ მხედრული ႠႡႢ ⴀ"                                        # Georgian
    yield "ＦＵＬＬＷＩＤＴＨ Ｌｅｔｔｅｒｓ ｱｲｳ"                              # fullwidth, halfwidth kana
    yield "𐐀𐐁𐐂 𐐨𐐩 𐓀 𞤀𞤁 𐲀 𑢠 𖹀 𐕰 𐖗"                                       # Deseret, Osage, Adlam, ...
    yield "GROẞE STRAẞE Straße ẞ ß ﬀ ﬁ ŉ ǰ ΐ"
    yield "Ƀ Ⱥ Ⱦ Ȿ Ɐ Ɑ Ɒ Ʌ Ɥ Ɦ Ɜ Ɡ Ɬ Ɪ Ʝ Ʞ Ꞵ Ꟑ Ƨ Ƹ Ǯ Ȣ Ǆ"                  # Latin Extended-B and beyond
    yield "K Å Ω ℲⅠⅫ ⅰ Ⓐ Ⓩ ⓐ"                                               # Kelvin, Angstrom, Ohm, numerals
    yield "ԱՐՄԵՆԻԱ ⰀⰁ ⲀⲂ ꙀꙂ ӀӁ Ѐ Ꚁ"                                           # Armenian, Glagolitic, Coptic, Cyrillic
    yield "日本語 中文 العربية עברית हिन्दी ไทย 한국어"                               # caseless scripts
    yield "À É Î Õ Ü Ç Ñ Ø Ÿ Ā Ğ Ł Ő Ž ÀÉÎ ΑΒΓ АБВ Ъ Ё × ÷ € ¿"             # what the old code covered
    # Look-alikes that are not whitespace stay inside a word.
    yield "".join("a" + ns + "B" for ns in NOT_SPACES) + " tail"
    # Every whitespace character as a separator, each on its own and next to a cased letter.
    yield joined(["W%dX" % i for i in range(2 * len(SEPARATORS))])
    yield "".join("Ø" + s for s in SEPARATORS) + "Ø"
    # Every character that lower() changes, separated by every kind of whitespace in turn.
    changing = [chr(c) for c in CODE_POINTS if chr(c).lower() != chr(c)]
    for i in range(0, len(changing), 48):
        yield joined(changing[i:i + 48], i)
    # Final sigma beside a sample of case-ignorable characters (Mn, Me, Cf, Lm, Sk, and the
    # word-break MidLetter/MidNumLet/Single_Quote punctuation), before and after.
    ignorable = [chr(c) for c in CODE_POINTS if case_ignorable(chr(c))]
    sample = ignorable[:40] + ignorable[40::40]
    for i in range(0, len(sample), 24):
        yield " ".join("Α%sΣ ΑΣ%sΑ Σ%sΑ" % (c, c, c) for c in sample[i:i + 24])


def invalid_lines():
    yield b"caf\xe9 \xc9T\xc9 CAF\xc3\x89"                     # Latin-1 bytes beside UTF-8
    yield b"\x80 \xbf\xbfA \xc0\xafX \xe0\x80\xafY \xed\xa0\x80Z \xf4\x90\x80\x80W \xf5\xfe\xffV"  # stray, overlong, surrogate, > U+10FFFF
    yield b"A\xe2\x82B \xe2\x82 \xf0\x9f\x98B \xce"              # cut sequences
    yield "ΑΣ".encode() + b"\xff " + b"\xff" + "Σ".encode() + b" " + "Α".encode() + b"\xff" + "Σ".encode() \
        + b" " + "ΑΣ".encode() + b"\xff" + "Α".encode()         # sigma beside a stray byte
    yield b"\x85NEL\xc2\x85SPLITS \xa0NBSP\xc2\xa0SPLITS"       # bytes of spaces, not spaces
    yield "İ".encode() + b"\x80" + "İ".encode() + b"\xe4 OK"


def write(name, data):
    with open(os.path.join(here, name), "wb") as f:
        f.write(data)


def main():
    assert sys.version_info[:2] == (3, 11), "the fixtures were made with Debian 12's Python 3.11"
    text = list(lines())
    for line in text:
        assert "\n" not in line
    # A byte order mark first (skipped, as Python's utf-8-sig does), and one CRLF ending.
    write("words.txt", ("\ufeff" + "\n".join(text[:2]) + "\r\n" + "\n".join(text[2:]) + "\n").encode("utf-8"))
    write("words.lower", "".join(w + "\n" for line in text for w in line.lower().split()).encode("utf-8"))
    write("words.keep", "".join(w + "\n" for line in text for w in line.split()).encode("utf-8"))
    raw = list(invalid_lines())
    write("invalid.txt", b"\n".join(raw) + b"\n")
    words = [w for line in raw for w in line.decode("utf-8", "surrogateescape").lower().split()]
    write("invalid.lower", b"".join(w.encode("utf-8", "surrogateescape") + b"\n" for w in words))
    print("unicode %s: %d lines, %d tokens; %d invalid lines, %d tokens"
          % (unicodedata.unidata_version, len(text), sum(len(l.split()) for l in text), len(raw), len(words)))


main()
