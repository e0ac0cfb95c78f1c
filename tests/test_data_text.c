/* WikiText-style token text: vocabulary, spans and targets against a naive reference
 * (linear-search counting, qsort, strtok), save/load, line selection, and bad files. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/text.h"
#include "data_files.h"
#include "enn_data.h"

#define TEXT_DIR ENN_SOURCE_DIR "/tests/data/text/"

/* ---------------------------------------------------------------- the reference */
typedef struct ref_entry { char token[32]; uint64_t count; } ref_entry;
typedef struct ref_vocab {
    ref_entry e[256];
    size_t n;          /* distinct tokens seen (not <unk>) */
    uint64_t unknown;  /* literal <unk> plus everything dropped */
    size_t size;       /* ids: 2 + kept */
} ref_vocab;

static int ref_cmp(const void *a, const void *b)
{
    const ref_entry *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return strcmp(x->token, y->token);
}

/* The tokens of `text` (ASCII only), lower-cased, in order, into toks. */
static size_t ref_tokens(const char *text, char toks[][32], size_t cap)
{
    char *copy = strdup(text);
    size_t n = 0;
    for (char *p = copy; *p; p++) *p = (char)tolower((unsigned char)*p);
    for (char *t = strtok(copy, " \t\r\n"); t; t = strtok(NULL, " \t\r\n")) {
        cr_assert_lt(n, cap);
        cr_assert_lt(strlen(t), 32);
        strcpy(toks[n++], t);
    }
    free(copy);
    return n;
}

static void ref_build(ref_vocab *v, char toks[][32], size_t ntok, uint32_t max_size, uint32_t min_count)
{
    memset(v, 0, sizeof *v);
    for (size_t i = 0; i < ntok; i++) {
        if (strcmp(toks[i], "<unk>") == 0) {
            v->unknown++;
            continue;
        }
        size_t j = 0;
        while (j < v->n && strcmp(v->e[j].token, toks[i]) != 0) j++;
        if (j == v->n) {
            cr_assert_lt(v->n, 256);
            strcpy(v->e[v->n++].token, toks[i]);
        }
        v->e[j].count++;
    }
    qsort(v->e, v->n, sizeof v->e[0], ref_cmp);
    size_t kept = 0;
    for (size_t j = 0; j < v->n; j++) {
        int keep = v->e[j].count >= (min_count ? min_count : 1) && (!max_size || kept + 2 < max_size);
        if (keep) v->e[kept++] = v->e[j];
        else v->unknown += v->e[j].count;
    }
    v->n = kept;
    v->size = kept + 2;
}

static uint32_t ref_id(const ref_vocab *v, const char *tok)
{
    for (size_t j = 0; j < v->n; j++)
        if (strcmp(v->e[j].token, tok) == 0) return (uint32_t)j + 2;
    return 1;
}

/* ---------------------------------------------------------------- test text */
/* WikiText's look: " = Title = " headings, blank lines, " @-@ " and " @,@ ", <unk>. */
static char *make_wiki_text(size_t lines, uint64_t seed)
{
    static const char *words[] = {"the", "The", "of", "and", "in", "game", "Game", "@-@", "@,@", ",", ".", "<unk>",
                                  "series", "Valkyria", "Chronicles", "III", "is", "a", "tactical", "role", "@.@",
                                  "playing", "video", "1", "2011", "Sega", "SEGA", "Japan"};
    size_t nwords = sizeof words / sizeof words[0];
    size_t cap = lines * 200 + 64, len = 0;
    char *text = malloc(cap);
    for (size_t l = 0; l < lines; l++) {
        if (l % 7 == 0) len += (size_t)snprintf(text + len, cap - len, " = %s %s = \n", words[l % nwords], "Title");
        else if (l % 5 == 0) len += (size_t)snprintf(text + len, cap - len, " \n");
        else {
            size_t n = 3 + test_rand_u64(&seed) % 12;
            for (size_t w = 0; w < n; w++) {
                /* Squared uniform: early words are more frequent (ties and a tail). */
                double u = test_rand_uniform(&seed, 0, 1);
                len += (size_t)snprintf(text + len, cap - len, " %s", words[(size_t)(u * u * nwords)]);
            }
            len += (size_t)snprintf(text + len, cap - len, " \n");
        }
    }
    return text;
}

static void check_vocab(const enn_vocab *v, const ref_vocab *r)
{
    cr_assert_eq(enn_vocab_size(v), r->size);
    cr_assert_str_eq(enn_vocab_token(v, 0), "<pad>");
    cr_assert_str_eq(enn_vocab_token(v, 1), "<unk>");
    cr_assert_eq(enn_vocab_count(v, 1), r->unknown);
    for (size_t j = 0; j < r->n; j++) {
        cr_assert_str_eq(enn_vocab_token(v, (uint32_t)j + 2), r->e[j].token, "id %zu", j + 2);
        cr_assert_eq(enn_vocab_count(v, (uint32_t)j + 2), r->e[j].count, "count of %s", r->e[j].token);
        cr_assert_eq(enn_vocab_id(v, r->e[j].token), j + 2);
    }
    cr_assert_null(enn_vocab_token(v, (uint32_t)r->size));
}

static char toks[8192][32];

Test(data_text, vocabulary_matches_the_reference)
{
    char dir[TEST_PATH_MAX], path[TEST_PATH_MAX];
    test_tmpdir(dir);
    char *text = make_wiki_text(120, 3);
    test_write_file(test_path(path, dir, "wiki.train.tokens"), text, strlen(text));
    size_t ntok = ref_tokens(text, toks, 8192);
    const struct { uint32_t max_size, min_count; } cases[] = {{0, 0}, {0, 1}, {10, 0}, {0, 5}, {3, 1}, {7, 40}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ref_vocab r;
        ref_build(&r, toks, ntok, cases[c].max_size, cases[c].min_count);
        enn_text_options opt = {.max_size = cases[c].max_size, .min_count = cases[c].min_count};
        enn_vocab *v;
        ENN_ASSERT_OK(enn_vocab_build(path, &opt, &v));
        check_vocab(v, &r);
        enn_vocab_free(v);
    }
    /* "The" and "the" are one token; "<pad>" in text would be <unk>, never the pad id. */
    enn_vocab *v;
    ENN_ASSERT_OK(enn_vocab_build(path, NULL, &v));
    cr_assert_eq(enn_vocab_id(v, "The"), 1);
    cr_assert_neq(enn_vocab_id(v, "the"), 1);
    cr_assert_eq(enn_vocab_id(v, "<pad>"), 1);
    cr_assert_eq(enn_vocab_id(v, "<unk>"), 1);
    enn_vocab_free(v);
    free(text);
    test_tmpdir_remove(dir);
}

static void check_spans(const enn_dataset *ds, const uint32_t *stream, size_t count, uint32_t T, int carry, int drop)
{
    size_t n = drop ? count / T : (count + T - 1) / T;
    cr_assert_eq(ds->n, n);
    cr_assert_eq(ds->T, T);
    cr_assert_null(ds->x);
    for (size_t i = 0; i < n; i++)
        for (size_t t = 0; t < T; t++) {
            size_t at = i * T + t;
            uint32_t in = at < count ? stream[at] : 0;
            uint32_t target = t + 1 < T ? (at + 1 < count ? stream[at + 1] : 0) : (carry && at + 1 < count ? stream[at + 1] : 0);
            cr_assert_eq(ds->tokens[at], in, "tokens[%zu, %zu]", i, t);
            cr_assert_eq(ds->targets[at], target, "targets[%zu, %zu]", i, t);
        }
}

Test(data_text, spans_and_shifted_targets)
{
    char dir[TEST_PATH_MAX], train[TEST_PATH_MAX], valid[TEST_PATH_MAX], vpath[TEST_PATH_MAX];
    test_tmpdir(dir);
    char *text = make_wiki_text(60, 11), *vtext = make_wiki_text(25, 12);
    test_write_file(test_path(train, dir, "wiki.train.tokens"), text, strlen(text));
    test_write_gz(test_path(valid, dir, "wiki.valid.tokens.gz"), vtext, strlen(vtext));
    enn_text_options opt = {.max_size = 12};
    enn_vocab *v, *loaded;
    ENN_ASSERT_OK(enn_vocab_build(train, &opt, &v));
    ENN_ASSERT_OK(enn_vocab_save(v, test_path(vpath, dir, "vocab.txt")));
    ENN_ASSERT_OK(enn_vocab_load(vpath, &loaded));
    cr_assert_eq(enn_vocab_size(loaded), enn_vocab_size(v));
    for (uint32_t i = 0; i < enn_vocab_size(v); i++) cr_assert_str_eq(enn_vocab_token(loaded, i), enn_vocab_token(v, i));

    ref_vocab r;
    size_t ntok = ref_tokens(text, toks, 8192);
    ref_build(&r, toks, ntok, 12, 1);
    /* The validation split, read with the training vocabulary (after save and load). */
    size_t vcount = ref_tokens(vtext, toks, 8192);
    uint32_t *stream = malloc(vcount * sizeof(uint32_t));
    for (size_t i = 0; i < vcount; i++) stream[i] = ref_id(&r, toks[i]);
    const uint32_t Ts[] = {1, 4, 7, 32};
    for (size_t c = 0; c < 4; c++)
        for (int carry = 0; carry < 2; carry++)
            for (int drop = 0; drop < 2; drop++) {
                enn_span_options so = {.T = Ts[c], .carry_last_target = carry, .drop_partial = drop};
                enn_dataset ds;
                ENN_ASSERT_OK(enn_load_tokens(valid, loaded, NULL, &so, &ds));
                cr_assert_eq(ds.vocab_size, r.size);
                check_spans(&ds, stream, vcount, Ts[c], carry, drop);
                enn_dataset_free(&ds);
            }
    free(stream);
    enn_vocab_free(v);
    enn_vocab_free(loaded);
    free(text);
    free(vtext);
    test_tmpdir_remove(dir);
}

/* Sum over ids of how often the built vocabulary counted them. */
static uint64_t vocab_total(const enn_vocab *v)
{
    uint64_t s = 0;
    for (uint32_t i = 0; i < enn_vocab_size(v); i++) s += enn_vocab_count(v, i);
    return s;
}

Test(data_text, a_fraction_of_lines_is_the_same_in_vocabulary_and_spans)
{
    char dir[TEST_PATH_MAX], path[TEST_PATH_MAX];
    test_tmpdir(dir);
    char *text = make_wiki_text(400, 5);
    test_write_file(test_path(path, dir, "wiki.train.tokens"), text, strlen(text));
    size_t all = ref_tokens(text, toks, 8192);
    uint64_t totals[2];
    for (int s = 0; s < 2; s++) {
        enn_text_options opt = {.fraction = 0.25, .seed = 100 + (uint64_t)s};
        enn_vocab *v;
        ENN_ASSERT_OK(enn_vocab_build(path, &opt, &v));
        enn_span_options so = {.T = 1};
        enn_dataset ds;
        ENN_ASSERT_OK(enn_load_tokens(path, v, &opt, &so, &ds));
        /* Every token of the selected lines was counted, and only those: no other
         * <unk> than the literal ones, and as many tokens as the vocabulary counted. */
        cr_assert_eq(ds.n, vocab_total(v));
        uint64_t unk = 0;
        for (size_t i = 0; i < ds.n; i++) unk += ds.tokens[i] == 1;
        cr_assert_eq(unk, enn_vocab_count(v, 1));
        /* A quarter, give or take (400 lines of ~10 tokens: 5 sigma is about +-0.11). */
        cr_assert(ds.n > all * 0.14 && ds.n < all * 0.36, "%zu of %zu tokens kept", ds.n, all);
        totals[s] = ds.n;
        enn_dataset_free(&ds);
        enn_vocab_free(v);
    }
    cr_assert_neq(totals[0], totals[1], "two seeds chose the same lines");
    free(text);
    test_tmpdir_remove(dir);
}

Test(data_text, lower_cases_beyond_ascii)
{
    char dir[TEST_PATH_MAX], path[TEST_PATH_MAX];
    test_tmpdir(dir);
    const char *text = "\xc3\x80\xc3\x89\xc3\x8e \xce\x91\xce\x92\xce\x93 \xd0\x90\xd0\x91\xd0\x92 \xc5\xb8 "
                       "\xc4\x80\xc4\x82 Stra\xc3\x9f" "e \xc3\x97 \xe2\x82\xac\n";
    test_write_file(test_path(path, dir, "u.tokens"), text, strlen(text));
    enn_vocab *v;
    ENN_ASSERT_OK(enn_vocab_build(path, NULL, &v));
    const char *lower[] = {"\xc3\xa0\xc3\xa9\xc3\xae", /* àéî */ "\xce\xb1\xce\xb2\xce\xb3", /* αβγ */
                           "\xd0\xb0\xd0\xb1\xd0\xb2", /* абв */ "\xc3\xbf",                /* ÿ */
                           "\xc4\x81\xc4\x83",         /* āă */  "stra\xc3\x9f" "e",        /* straße */
                           "\xc3\x97",                 /* × stays */ "\xe2\x82\xac"         /* € */};
    cr_assert_eq(enn_vocab_size(v), 2 + 8);
    for (int i = 0; i < 8; i++) cr_assert_neq(enn_vocab_id(v, lower[i]), 1, "token %d not lower-cased as expected", i);
    enn_vocab_free(v);
    enn_text_options keep = {.keep_case = 1};
    ENN_ASSERT_OK(enn_vocab_build(path, &keep, &v));
    cr_assert_neq(enn_vocab_id(v, "Stra\xc3\x9f" "e"), 1);
    enn_vocab_free(v);
    test_tmpdir_remove(dir);
}

/* ---------------------------------------------------------------- Unicode words */
/* A token list: the tokens one after another, each ended by '\n' (no token holds one). */
typedef struct token_list {
    char *text;
    size_t len, cap;
} token_list;

static enn_status collect_token(void *user, char *word, size_t n, size_t line_no)
{
    (void)line_no;
    token_list *t = user;
    cr_assert_eq(strlen(word), n, "the word is not NUL-terminated at its length");
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->text = realloc(t->text, t->cap);
    }
    memcpy(t->text + t->len, word, n);
    t->text[t->len + n] = '\n';
    t->len += n + 1;
    return ENN_OK;
}

/* Splits a token list into its tokens, in place; returns their number. */
static size_t split_tokens(char *text, size_t len, char ***tokens)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += text[i] == '\n';
    cr_assert(len == 0 || text[len - 1] == '\n', "a token list ends with a newline");
    *tokens = malloc((n + 1) * sizeof(char *));
    char *p = text;
    for (size_t i = 0; i < n; i++) {
        char *e = strchr(p, '\n');
        *e = '\0';
        (*tokens)[i] = p;
        p = e + 1;
    }
    return n;
}

/* The tokens libenn reads from TEXT_DIR/input are, in order, those in TEXT_DIR/expected
 * (written by tests/data/text/make_words.py with Python's str.lower() and str.split()). */
static void expect_python_tokens(const char *input, int keep_case, const char *expected)
{
    char path[TEST_PATH_MAX];
    snprintf(path, sizeof path, TEXT_DIR "%s", input);
    token_list got = {0};
    enn_text_options opt = {.fraction = 1.0, .keep_case = keep_case};
    uint64_t bytes;
    ENN_ASSERT_OK(enn_text_for_each_token(path, &opt, collect_token, &got, &bytes));
    unsigned char *want_text;
    snprintf(path, sizeof path, TEXT_DIR "%s", expected);
    size_t want_len = test_read_file(path, &want_text);
    char **want, **have;
    size_t nwant = split_tokens((char *)want_text, want_len, &want), nhave = split_tokens(got.text, got.len, &have);
    for (size_t i = 0; i < nwant && i < nhave; i++)
        cr_assert_str_eq(have[i], want[i], "%s (keep_case %d): token %zu is '%s', Python's is '%s'", input, keep_case, i,
                         have[i], want[i]);
    cr_assert_eq(nhave, nwant, "%s (keep_case %d): %zu tokens, Python's %zu", input, keep_case, nhave, nwant);
    free(want);
    free(have);
    free(want_text);
    free(got.text);
}

/* Every script's capitals, titlecase digraphs, U+0130 (two characters in lower case), the
 * Greek final sigma in its contexts, every Unicode space (and look-alikes that are not):
 * word for word what Python 3.11's line.lower().split() gives, or line.split(). */
Test(data_text, words_are_pythons_lower_split)
{
    expect_python_tokens("words.txt", 0, "words.lower");
    expect_python_tokens("words.txt", 1, "words.keep");
}

/* Bytes that are not UTF-8 are kept as they are, never spaces, neither cased nor
 * case-ignorable: Python's reading with errors="surrogateescape". */
Test(data_text, bytes_that_are_not_utf8_pass_through)
{
    expect_python_tokens("invalid.txt", 0, "invalid.lower");
}

/* The public path reads the same words: the spans of the fixture hold, in order, the ids of
 * Python's tokens in the vocabulary built from it. */
Test(data_text, vocabulary_and_spans_hold_pythons_words)
{
    enn_vocab *v;
    ENN_ASSERT_OK(enn_vocab_build(TEXT_DIR "words.txt", NULL, &v));
    enn_span_options so = {.T = 1};
    enn_dataset ds;
    ENN_ASSERT_OK(enn_load_tokens(TEXT_DIR "words.txt", v, NULL, &so, &ds));
    unsigned char *text;
    size_t len = test_read_file(TEXT_DIR "words.lower", &text);
    char **want;
    size_t n = split_tokens((char *)text, len, &want);
    cr_assert_eq(ds.n, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_neq(enn_vocab_id(v, want[i]), 1u, "'%s' is not in the vocabulary", want[i]);
        cr_assert_eq(ds.tokens[i], enn_vocab_id(v, want[i]), "token %zu ('%s')", i, want[i]);
    }
    free(want);
    free(text);
    enn_dataset_free(&ds);
    enn_vocab_free(v);
}

/* A UTF-8 byte order mark (what Windows editors put first) is not text: a token file, a
 * vocabulary and a CSV that start with one read as the same files without it. */
Test(data_text, byte_order_mark_is_skipped)
{
    char dir[TEST_PATH_MAX], plain[TEST_PATH_MAX], marked[TEST_PATH_MAX];
    test_tmpdir(dir);
    const char *text = "alpha beta\r\nbeta gamma alpha\n", *bom = "\xef\xbb\xbf";
    char with_bom[64];
    snprintf(with_bom, sizeof with_bom, "%s%s", bom, text);
    test_write_file(test_path(plain, dir, "plain.tokens"), text, strlen(text));
    test_write_file(test_path(marked, dir, "bom.tokens"), with_bom, strlen(with_bom));
    enn_vocab *a, *b;
    ENN_ASSERT_OK(enn_vocab_build(plain, NULL, &a));
    ENN_ASSERT_OK(enn_vocab_build(marked, NULL, &b));
    cr_assert_eq(enn_vocab_size(b), enn_vocab_size(a), "the mark made a token of its own or joined a word");
    cr_expect_neq(enn_vocab_id(b, "alpha"), 1u, "'alpha' after the mark is not the word alpha");
    enn_span_options spans = {.T = 5};
    enn_dataset da, db;
    ENN_ASSERT_OK(enn_load_tokens(plain, a, NULL, &spans, &da));
    ENN_ASSERT_OK(enn_load_tokens(marked, b, NULL, &spans, &db));
    cr_assert_eq(db.n, da.n);
    cr_expect_arr_eq(db.tokens, da.tokens, da.n * da.T * sizeof *da.tokens);
    enn_dataset_free(&da);
    enn_dataset_free(&db);
    /* A vocabulary file saved with a mark still starts with <pad>. */
    char vocab[TEST_PATH_MAX], vocab_text[64];
    snprintf(vocab_text, sizeof vocab_text, "%s<pad>\n<unk>\nalpha\n", bom);
    test_write_file(test_path(vocab, dir, "vocab.txt"), vocab_text, strlen(vocab_text));
    enn_vocab *c;
    ENN_ASSERT_OK(enn_vocab_load(vocab, &c));
    cr_expect_eq(enn_vocab_id(c, "alpha"), 2u);
    enn_vocab_free(c);
    /* And a CSV whose header line starts with one. */
    char csv[TEST_PATH_MAX], csv_text[64];
    snprintf(csv_text, sizeof csv_text, "%sa,b,y\n1,2,3\n4,5,6\n", bom);
    test_write_file(test_path(csv, dir, "t.csv"), csv_text, strlen(csv_text));
    enn_dataset t;
    ENN_ASSERT_OK(enn_load_csv(csv, NULL, &t));
    cr_expect(t.n == 2 && t.d == 2 && t.k == 1 && t.x[0] == 1.0f && t.y[1] == 6.0f, "n %zu d %u k %u", t.n, t.d, t.k);
    enn_dataset_free(&t);
    enn_vocab_free(a);
    enn_vocab_free(b);
    test_tmpdir_remove(dir);
}

/* Lines end as Python's universal newlines end them: at "\n", "\r\n" or a lone "\r". A text
 * with those endings mixed reads as the same text with "\n" alone, down to which lines a
 * fraction keeps (chosen by line number). One "\r\n" straddles the end of the reader's
 * first 1 MiB read, where the '\r' alone cannot say which ending it is. */
Test(data_text, lines_end_at_any_newline)
{
    char dir[TEST_PATH_MAX], unix_path[TEST_PATH_MAX], mixed_path[TEST_PATH_MAX];
    test_tmpdir(dir);
    char *text = make_wiki_text(40000, 11);
    size_t len = strlen(text), lines = 0, cap = len * 2 + 8192, first_read = (size_t)1 << 20;
    char *mixed = malloc(cap);
    size_t m = 0;
    int straddled = 0;
    static const char *endings[] = {"\n", "\r\n", "\r"};
    for (const char *ls = text; *ls; lines++) {
        const char *le = strchr(ls, '\n');
        size_t n = (size_t)(le - ls);
        memcpy(mixed + m, ls, n);
        m += n;
        const char *end = endings[lines % 3];
        /* The last line that starts 200 bytes (more than any line) before the read's end is
         * padded with spaces until its '\r' is the read's last byte. */
        if (!straddled && m + 200 > first_read) {
            cr_assert_leq(m, first_read - 1);
            memset(mixed + m, ' ', first_read - 1 - m);
            m = first_read - 1;
            end = "\r\n";
            straddled = 1;
        }
        memcpy(mixed + m, end, strlen(end));
        m += strlen(end);
        ls = le + 1;
    }
    cr_assert(straddled && len > first_read, "the text (%zu bytes) does not reach past the first read", len);
    test_write_file(test_path(unix_path, dir, "unix.tokens"), text, len);
    test_write_file(test_path(mixed_path, dir, "mixed.tokens"), mixed, m);
    enn_text_options opt = {.fraction = 0.5, .seed = 3};
    enn_vocab *a, *b;
    ENN_ASSERT_OK(enn_vocab_build(unix_path, &opt, &a));
    ENN_ASSERT_OK(enn_vocab_build(mixed_path, &opt, &b));
    cr_assert_eq(enn_vocab_size(b), enn_vocab_size(a));
    for (uint32_t id = 0; id < enn_vocab_size(a); id++) {
        cr_assert_str_eq(enn_vocab_token(b, id), enn_vocab_token(a, id));
        cr_assert_eq(enn_vocab_count(b, id), enn_vocab_count(a, id), "count of '%s'", enn_vocab_token(a, id));
    }
    enn_span_options spans = {.T = 1};
    enn_dataset da, db;
    ENN_ASSERT_OK(enn_load_tokens(unix_path, a, &opt, &spans, &da));
    ENN_ASSERT_OK(enn_load_tokens(mixed_path, b, &opt, &spans, &db));
    cr_assert_eq(db.n, da.n);
    cr_expect_arr_eq(db.tokens, da.tokens, da.n * sizeof *da.tokens);
    enn_dataset_free(&da);
    enn_dataset_free(&db);
    enn_vocab_free(a);
    enn_vocab_free(b);
    free(mixed);
    free(text);
    test_tmpdir_remove(dir);
}

/* enn_vocab_encode reads a text as the loader reads a line of a file: the same ids as the
 * file's spans (capitals beyond ASCII included), <unk> for a word not seen, and the count of
 * words even where the array is too short. */
Test(data_text, encode_reads_text_as_the_loader_does)
{
    char dir[TEST_PATH_MAX], path[TEST_PATH_MAX];
    test_tmpdir(dir);
    const char *line = "  The cat \xc3\x80ND the\tDOG sat  on the Mat .";
    char text[128];
    snprintf(text, sizeof text, "%s\nextra words here\n", line);
    test_write_file(test_path(path, dir, "t.tokens"), text, strlen(text));
    enn_vocab *v;
    ENN_ASSERT_OK(enn_vocab_build(path, NULL, &v));
    enn_span_options spans = {.T = 10, .drop_partial = 0};
    enn_dataset ds;
    ENN_ASSERT_OK(enn_load_tokens(path, v, NULL, &spans, &ds));   /* the first line's 10 words: span 0 */
    uint32_t ids[16];
    size_t n;
    ENN_ASSERT_OK(enn_vocab_encode(v, line, 0, ids, 16, &n));
    cr_assert_eq(n, 10u);
    for (size_t i = 0; i < n; i++) cr_expect_eq(ids[i], ds.tokens[i], "word %zu: id %u, the loader's %u", i, ids[i], ds.tokens[i]);
    /* An unseen word, and a short array. */
    ENN_ASSERT_OK(enn_vocab_encode(v, "the unicorn sat", 0, ids, 2, &n));
    cr_expect_eq(n, 3u);
    cr_expect_eq(ids[0], enn_vocab_id(v, "the"));
    cr_expect_eq(ids[1], 1u, "an unseen word is <unk>");
    /* keep_case: "The" as written is not in a lower-cased vocabulary. */
    ENN_ASSERT_OK(enn_vocab_encode(v, "The", 1, ids, 16, &n));
    cr_expect(n == 1 && ids[0] == 1u);
    cr_expect_eq(enn_vocab_encode(v, NULL, 0, ids, 16, &n), ENN_ERROR_INVALID_ARGUMENT);
    enn_dataset_free(&ds);
    enn_vocab_free(v);
    test_tmpdir_remove(dir);
}

static void expect_vocab_load_error(const char *dir, const char *name, const char *text, size_t n, const char *problem)
{
    char path[TEST_PATH_MAX];
    test_write_file(test_path(path, dir, name), text, n);
    enn_vocab *v = (enn_vocab *)path; /* must be reset to NULL */
    test_expect_error(enn_vocab_load(path, &v), ENN_ERROR_FORMAT, name, problem);
    cr_assert_null(v);
}

Test(data_text, malformed_files_are_rejected)
{
    char dir[TEST_PATH_MAX], path[TEST_PATH_MAX], good[TEST_PATH_MAX];
    test_tmpdir(dir);
    enn_vocab *v;
    enn_dataset ds;
    enn_span_options so = {.T = 4};
    /* Text files. */
    test_write_file(test_path(path, dir, "empty.tokens"), "", 0);
    test_expect_error(enn_vocab_build(path, NULL, &v), ENN_ERROR_FORMAT, "empty.tokens", "empty file");
    test_write_file(test_path(path, dir, "blank.tokens"), " \n \n", 4);
    test_expect_error(enn_vocab_build(path, NULL, &v), ENN_ERROR_FORMAT, "blank.tokens", "no tokens");
    test_write_file(test_path(path, dir, "binary.tokens"), "ab c\n\x01\0\x02", 8);
    test_expect_error(enn_vocab_build(path, NULL, &v), ENN_ERROR_FORMAT, "binary.tokens", "not a text file: NUL byte at offset 6");
    char *text = make_wiki_text(300, 9);
    test_write_gz(test_path(path, dir, "wiki.train.tokens.gz"), text, strlen(text));
    unsigned char *gz;
    size_t n = test_read_file(path, &gz);
    test_write_file(test_path(path, dir, "cut.tokens.gz"), gz, n - 20);
    test_expect_error(enn_vocab_build(path, NULL, &v), ENN_ERROR_FORMAT, "cut.tokens.gz", "truncated gzip stream");
    free(gz);
    test_expect_error(enn_vocab_build(test_path(path, dir, "nothing.tokens"), NULL, &v), ENN_ERROR_IO, "nothing.tokens",
                      "cannot open");
    /* Spans from files that are wrong, and bad options. */
    test_write_file(test_path(good, dir, "ok.tokens"), " a b c \n", 8);
    ENN_ASSERT_OK(enn_vocab_build(good, NULL, &v));
    test_write_file(test_path(path, dir, "empty.valid.tokens"), "", 0);
    test_expect_error(enn_load_tokens(path, v, NULL, &so, &ds), ENN_ERROR_FORMAT, "empty.valid.tokens", "empty file");
    cr_assert_null(ds.tokens);
    enn_span_options drop = {.T = 4, .drop_partial = 1};
    test_expect_error(enn_load_tokens(good, v, NULL, &drop, &ds), ENN_ERROR_FORMAT, "ok.tokens",
                      "3 tokens, fewer than one span of T = 4");
    enn_span_options zero = {.T = 0};
    test_expect_error(enn_load_tokens(good, v, NULL, &zero, &ds), ENN_ERROR_INVALID_ARGUMENT, "ok.tokens",
                      "span length T = 0 is not within 1..16777216");
    enn_span_options absurd = {.T = 0xffffffffu};   /* one padded span would be 32 GB */
    test_expect_error(enn_load_tokens(good, v, NULL, &absurd, &ds), ENN_ERROR_INVALID_ARGUMENT, "ok.tokens",
                      "T = 4294967295 is not within");
    enn_text_options frac = {.fraction = 1.5};
    test_expect_error(enn_load_tokens(good, v, &frac, &so, &ds), ENN_ERROR_INVALID_ARGUMENT, "ok.tokens", "fraction 1.5");
    enn_text_options tiny = {.max_size = 2};
    enn_vocab *w;
    test_expect_error(enn_vocab_build(good, &tiny, &w), ENN_ERROR_INVALID_ARGUMENT, "ok.tokens", "max_size 2");
    enn_vocab_free(v);
    /* Vocabulary files. */
    expect_vocab_load_error(dir, "empty.vocab", "", 0, "empty file");
    expect_vocab_load_error(dir, "magic.vocab", "the\n<unk>\n", 10, "magic.vocab:1: wrong magic: line 1 must be \"<pad>\"");
    expect_vocab_load_error(dir, "unk.vocab", "<pad>\nthe\n", 10, "unk.vocab:2: wrong magic: line 2 must be \"<unk>\"");
    expect_vocab_load_error(dir, "short.vocab", "<pad>\n", 6, "truncated: 1 line(s)");
    expect_vocab_load_error(dir, "dup.vocab", "<pad>\n<unk>\nthe\nof\nthe\n", 22, "dup.vocab:5: token 'the' repeats line 3");
    expect_vocab_load_error(dir, "hole.vocab", "<pad>\n<unk>\nthe\n\nof\n", 18, "hole.vocab:4: empty line");
    expect_vocab_load_error(dir, "space.vocab", "<pad>\n<unk>\nthe cat\n", 20, "space.vocab:3: token holds whitespace");
    expect_vocab_load_error(dir, "nbsp.vocab", "<pad>\n<unk>\nthe\xc2\xa0" "cat\n", 21, "nbsp.vocab:3: token holds U+00A0, a space where words are split as Python's str.split() does: a vocabulary built by an earlier libenn");
    expect_vocab_load_error(dir, "fs.vocab", "<pad>\n<unk>\nthe\x1c\n", 16, "fs.vocab:3: token holds U+001C, a space");
    expect_vocab_load_error(dir, "nul.vocab", "<pad>\n<unk>\n\0\n", 14, "NUL byte");
    free(text);
    test_tmpdir_remove(dir);
}

/* The real files, when ENN_WIKITEXT_DIR names a folder with wiki.train.tokens,
 * wiki.valid.tokens and wiki.test.tokens (WikiText-2 or -103; no download in tests). */
Test(data_text, real_wikitext_when_present, .timeout = 600)
{
    const char *dir = getenv("ENN_WIKITEXT_DIR");
    if (!dir || !dir[0]) cr_skip_test("ENN_WIKITEXT_DIR not set");
    char train[TEST_PATH_MAX], other[TEST_PATH_MAX];
    enn_vocab *v;
    ENN_ASSERT_OK(enn_vocab_build(test_path(train, dir, "wiki.train.tokens"), NULL, &v));
    cr_assert_gt(enn_vocab_size(v), 1000);
    enn_span_options so = {.T = 32};
    const char *names[3] = {"wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"};
    for (int f = 0; f < 3; f++) {
        enn_dataset ds;
        ENN_ASSERT_OK(enn_load_tokens(test_path(other, dir, names[f]), v, NULL, &so, &ds));
        size_t unk = 0, pad = 0;
        for (size_t i = 0; i < ds.n * 32; i++) unk += ds.tokens[i] == 1, pad += ds.tokens[i] == 0;
        cr_assert_lt(pad, 32, "%s: padding beyond the last span", names[f]);
        /* WikiText replaced rare words by <unk> already: a few percent at most. */
        cr_assert_lt(unk, ds.n * 32 / 20, "%s: %zu of %zu tokens are <unk>", names[f], unk, ds.n * 32);
        enn_dataset_free(&ds);
    }
    enn_vocab_free(v);
}
