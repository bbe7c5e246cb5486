// Package redact removes secrets and tokens from the text azcred reports:
// error messages, log records and the response excerpts errors carry.
//
// Every source uses the one [Redactor]: it registers each secret a request
// sent (a client secret or assertion, IDENTITY_HEADER, MSI_SECRET, the Azure
// Arc key, a refresh token, the strings a developer tool printed on stdout)
// and passes everything it reports through it. A Redactor removes
//
//   - each registered secret, raw and in the encodings a server echoes it in
//     (percent-encoded in either hex case, JSON-escaped), and in text whose
//     JSON escapes ("\u0073...") decode to it;
//   - anything shaped like a token whatever secrets were registered: JWTs,
//     the value after "Bearer" or "Basic", the values of token- and
//     secret-like keys in JSON ("access_token", "refreshToken", "token",
//     "client_secret", ...), in Python's printed dicts, in key=value form
//     and in PowerShell's "Token : value" tables.
//
// Opaque tokens (not JWTs) are caught by their key, or by being registered.
package redact

import (
	"bytes"
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Mark replaces what is removed.
const Mark = "REDACTED"

// Redactor removes a set of secrets, and every token shape, from text. The
// nil *Redactor removes token shapes only. A Redactor is immutable and safe
// for concurrent use.
type Redactor struct {
	forms []string // every registered secret in every encoding, longest first
}

// New returns a Redactor of secrets; empty ones are ignored.
func New(secrets ...string) *Redactor {
	return (*Redactor)(nil).With(secrets...)
}

// With returns a Redactor of r's secrets and secrets. r is unchanged.
func (r *Redactor) With(secrets ...string) *Redactor {
	n := &Redactor{}
	if r != nil {
		n.forms = slices.Clone(r.forms)
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		n.forms = append(n.forms, s)
		for _, e := range []string{url.QueryEscape(s), url.PathEscape(s)} {
			n.forms = append(n.forms, e, lowerHex(e))
		}
		for _, html := range []bool{true, false} {
			n.forms = append(n.forms, jsonInner(s, html))
		}
	}
	slices.SortFunc(n.forms, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	n.forms = slices.Compact(n.forms)
	return n
}

// String returns s without any registered secret and without token shapes.
// It leaves s as it is otherwise; use [Redactor.Body] for a response body,
// whose JSON escapes may spell out a secret.
func (r *Redactor) String(s string) string {
	if r != nil {
		for _, f := range r.forms {
			if strings.Contains(s, f) {
				s = strings.ReplaceAll(s, f, Mark)
			}
		}
	}
	s = jwtShape.ReplaceAllString(s, Mark)
	s = redactAuthSchemes(s)
	return redactKeyValues(s)
}

// Text is String for text that may hold escapes: a tool's output, a body
// that is not JSON. It redacts the raw text; then each line that is JSON is
// decoded and written again as [Redactor.Body] does (so it stays JSON for
// whoever reads it next), and in every other line the JSON escapes are
// decoded and the decoded line is redacted again.
func (r *Redactor) Text(s string) string {
	s = r.String(strings.ToValidUTF8(s, "\uFFFD"))
	if !strings.Contains(s, `\`) {
		return s
	}
	lines := strings.SplitAfter(s, "\n")
	for i, line := range lines {
		body := strings.TrimRight(line, "\r\n")
		end := line[len(body):]
		if out, ok := r.rewriteJSON(strings.TrimSpace(body)); ok {
			lines[i] = r.String(out) + end
		} else if d, ok := unescape(body); ok {
			lines[i] = r.String(d) + end
		}
	}
	return strings.Join(lines, "")
}

// Body returns an excerpt of a response body of at most max bytes (cut on a
// rune boundary, the cut marked), valid UTF-8, without secrets or tokens. A
// body that is JSON is decoded and written again: every string is redacted
// after its escapes are decoded, and the values of token- and secret-like
// keys are replaced whole. Any other body is redacted as [Redactor.Text].
func (r *Redactor) Body(body []byte, max int) string {
	s := r.String(strings.ToValidUTF8(string(body), "\uFFFD"))
	if out, ok := r.rewriteJSON(s); ok {
		s = r.String(out)
	} else {
		s = r.Text(s)
	}
	return Truncate(s, max)
}

// Error returns err with a message redacted by r, or nil for nil. The
// result unwraps to err, so errors.Is and errors.As still see its causes.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := r.String(msg)
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Truncate cuts s to at most n bytes on a rune boundary, marking the cut
// with "…" (which the n bytes include when n leaves room for it).
func Truncate(s string, n int) string {
	if n < 0 {
		n = 0
	}
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := n - len(ellipsis)
	if cut < 0 {
		cut = n
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if cut+len(ellipsis) > n {
		return s[:cut]
	}
	return s[:cut] + ellipsis
}

// keywords end secret-like keys: a name ending in token, secret, password,
// assertion or credential (access_token, refreshToken, client_secret,
// client-assertion, ...), or a header that carries a secret. The scan looks
// for the keywords (lower case) and finds the rest of each key by hand,
// which keeps it linear and cheap.
var keywords = []string{
	"token", "secret", "password", "passwd", "assertion", "credential", "authorization",
	"identity-header", "identity_header", "identityheader",
	"device-code", "device_code", "devicecode", "api-key", "api_key", "apikey",
}

// suffixKeywords may end any key; the others must be the whole key or
// follow '-' or '_'.
var suffixKeywords = []string{"token", "secret", "password", "passwd", "assertion", "credential"}

// schemes are the HTTP authorization schemes whose credentials are removed.
var schemes = []string{"bearer", "basic", "pop"}

var jwtShape = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}(?:\.[A-Za-z0-9_-]*)?`)

// find returns the spans of words in lower (s in ASCII lower case), in
// order of their start, longer first at the same start.
func find(lower string, words []string) [][2]int {
	var spans [][2]int
	for _, w := range words {
		for i := 0; ; {
			j := strings.Index(lower[i:], w)
			if j < 0 {
				break
			}
			spans = append(spans, [2]int{i + j, i + j + len(w)})
			i += j + 1
		}
	}
	slices.SortFunc(spans, func(a, b [2]int) int {
		if a[0] != b[0] {
			return a[0] - b[0]
		}
		return b[1] - a[1]
	})
	return spans
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = toLower(b[j])
			}
			return string(b)
		}
	}
	return s
}

// isSecretKey reports whether a JSON key names a secret.
func isSecretKey(k string) bool {
	lower := asciiLower(k)
	for _, w := range suffixKeywords {
		if strings.HasSuffix(lower, w) {
			return true
		}
	}
	for _, w := range keywords {
		if strings.HasSuffix(lower, w) && (len(lower) == len(w) || lower[len(lower)-len(w)-1] == '-' || lower[len(lower)-len(w)-1] == '_') {
			return true
		}
	}
	return false
}

func isKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// redactAuthSchemes replaces the credentials after Bearer, Basic and PoP:
// a run of at least 8 token characters after the scheme and a space.
func redactAuthSchemes(s string) string {
	lower := asciiLower(s)
	var b strings.Builder
	last := 0
	for _, m := range find(lower, schemes) {
		if m[0] < last || m[0] > 0 && isKeyByte(s[m[0]-1]) {
			continue
		}
		i := m[1]
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == m[1] {
			continue
		}
		end := i
		for end < len(s) && isTokenByte(s[end]) {
			end++
		}
		if end-i < 8 {
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(Mark)
		last = end
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func isTokenByte(c byte) bool { return isKeyByte(c) || strings.IndexByte("._~+/=", c) >= 0 }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// redactKeyValues replaces the values of secret-like keys: quoted keys
// with quoted values (JSON, Python's dicts; up to the closing quote or the
// end of a truncated text), key=value (forms, query strings), and
// "key: value" where the key is compound (accessToken) or starts a line
// (PowerShell's "Token : value" tables, YAML, header dumps).
func redactKeyValues(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range find(asciiLower(s), keywords) {
		if m[0] < last {
			continue
		}
		k, e := m[0], m[1]
		for k > last && e-k < maxKey && isKeyByte(s[k-1]) {
			k--
		}
		if k > 0 && isKeyByte(s[k-1]) {
			continue // longer than any key: a run of letters, not a name
		}
		if e < len(s) && isKeyByte(s[e]) {
			continue // the key goes on: token_type, secretName
		}
		start, end, ok := valueAfter(s, k, e)
		if !ok || end == start || s[start:end] == Mark {
			continue
		}
		b.WriteString(s[last:start])
		b.WriteString(Mark)
		last = end
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// maxKey bounds the length of a key, so that the scan back from each
// keyword stays short on hostile text ("tokentokentoken...").
const maxKey = 64

// valueAfter finds the value of the key s[k:e], if it is followed by one.
func valueAfter(s string, k, e int) (start, end int, ok bool) {
	skip := func(i int) int {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		return i
	}
	// A quoted key: "key": "value" or 'key': 'value'.
	if k > 0 && (s[k-1] == '"' || s[k-1] == '\'') && e < len(s) && s[e] == s[k-1] {
		i := skip(e + 1)
		if i >= len(s) || s[i] != ':' {
			return 0, 0, false
		}
		i = skip(i + 1)
		if i >= len(s) || (s[i] != '"' && s[i] != '\'') {
			return 0, 0, false
		}
		q := s[i]
		start = i + 1
		end = start
		for end < len(s) && s[end] != q {
			if s[end] == '\\' && end+1 < len(s) {
				end++
			}
			end++
		}
		return start, min(end, len(s)), true
	}
	i := skip(e)
	if i >= len(s) {
		return 0, 0, false
	}
	name := normalKey(s[k:e])
	switch {
	case s[i] == '=':
	case s[i] == ':' && compoundKeys[name]:
	case s[i] == ':' && lineKeys[name] && atLineStart(s, k):
	default:
		return 0, 0, false
	}
	start = skip(i + 1)
	if start < len(s) && (s[start] == '"' || s[start] == '\'') {
		return 0, 0, false // a quoted value after an unquoted key: a sentence
	}
	end = start
	for end < len(s) && !isSpace(s[end]) && !strings.ContainsRune("&\"',;)}]", rune(s[end])) {
		end++
	}
	return start, end, true
}

// compoundKeys are the names (lower case, without '-' and '_') whose
// "name: value" is a secret wherever it appears; lineKeys those for which
// it is one at the start of a line (PowerShell's "Token : value" table, a
// header dump). Elsewhere "token: ..." is a sentence ("failed to get a
// token: timeout"), and "XCredential: ..." starts azcred's own messages.
var (
	compoundKeys = map[string]bool{
		"accesstoken": true, "refreshtoken": true, "idtoken": true, "sessiontoken": true,
		"clientsecret": true, "clientassertion": true, "msisecret": true,
	}
	lineKeys = map[string]bool{
		"token": true, "secret": true, "password": true, "assertion": true, "authorization": true,
		"xidentityheader": true, "identityheader": true, "apikey": true,
		"accesstoken": true, "refreshtoken": true, "idtoken": true, "clientsecret": true,
	}
)

// normalKey is a key in lower case without '-' and '_'.
func normalKey(k string) string { return keySeparators.Replace(asciiLower(k)) }

var keySeparators = strings.NewReplacer("-", "", "_", "")

// atLineStart reports whether only spaces precede s[k] on its line.
func atLineStart(s string, k int) bool {
	for i := k - 1; i >= 0; i-- {
		switch s[i] {
		case '\n':
			return true
		case ' ', '\t', '\r':
		default:
			return false
		}
	}
	return true
}

// rewriteJSON decodes s as JSON and writes it again compactly, with every
// string (key or value) decoded and redacted and every secret-like key's
// string value replaced. ok is false when s is not one JSON value.
func (r *Redactor) rewriteJSON(s string) (string, bool) {
	if !json.Valid([]byte(s)) {
		return "", false
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	type frame struct {
		object bool
		n      int  // elements (object: keys) written so far
		key    bool // object: the next string is a key
		secret bool // object: the value being read belongs to a secret key
	}
	var (
		out   bytes.Buffer
		stack []frame
	)
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			out.WriteByte(byte(d))
			stack = stack[:len(stack)-1]
			if len(stack) > 0 {
				stack[len(stack)-1].key = stack[len(stack)-1].object
			}
			continue
		}
		// Separators before a key or an array element; a colon after a key.
		secretValue := false
		if top != nil {
			switch {
			case top.object && top.key:
				if top.n > 0 {
					out.WriteByte(',')
				}
				top.n++
			case top.object:
				out.WriteByte(':')
				secretValue = top.secret
			default:
				if top.n > 0 {
					out.WriteByte(',')
				}
				top.n++
			}
		}
		switch v := tok.(type) {
		case json.Delim:
			out.WriteByte(byte(v))
			stack = append(stack, frame{object: v == '{', key: v == '{'})
			continue
		case string:
			if top != nil && top.object && top.key {
				top.secret = isSecretKey(v)
				writeJSONString(&out, r.String(v))
				top.key = false
				continue
			}
			if secretValue && v != "" {
				v = Mark
			}
			writeJSONString(&out, r.String(v))
		case json.Number:
			out.WriteString(v.String())
		case bool:
			if v {
				out.WriteString("true")
			} else {
				out.WriteString("false")
			}
		case nil:
			out.WriteString("null")
		}
		if top != nil && top.object {
			top.key = true
		}
	}
	return out.String(), true
}

func writeJSONString(b *bytes.Buffer, s string) {
	b.WriteString(`"`)
	b.WriteString(jsonInner(s, false))
	b.WriteString(`"`)
}

// jsonInner is s as a JSON string without its quotes; html escapes <, > and
// & as encoding/json does by default.
func jsonInner(s string, html bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(html)
	_ = enc.Encode(s) // a string always encodes
	out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	return string(out[1 : len(out)-1])
}

// lowerHex rewrites the hex digits of percent escapes in lower case.
func lowerHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1] = toLower(b[i+1])
			b[i+2] = toLower(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func toLower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// unescape decodes the JSON escapes in s (\u and four hex digits, with surrogate pairs, \",
// \\, \/, \b, \f, \n, \r, \t), leaving anything else as it is. ok reports
// whether there was any.
func unescape(s string) (string, bool) {
	if !strings.Contains(s, `\`) {
		return s, false
	}
	var b strings.Builder
	changed := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch e := s[i+1]; e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, n := hexRune(s[i+2:])
			if n == 0 {
				b.WriteByte(c)
				continue
			}
			if r >= 0xD800 && r < 0xDC00 && strings.HasPrefix(s[i+2+n:], `\u`) {
				if lo, m := hexRune(s[i+4+n:]); m > 0 && lo >= 0xDC00 && lo < 0xE000 {
					r = (r-0xD800)<<10 | (lo - 0xDC00) + 0x10000
					n += 2 + m
				}
			}
			if !utf8.ValidRune(r) {
				r = utf8.RuneError
			}
			b.WriteRune(r)
			i += n
		default:
			b.WriteByte(c)
			continue
		}
		i++
		changed = true
	}
	return b.String(), changed
}

// hexRune reads the four hex digits at the start of s.
func hexRune(s string) (rune, int) {
	if len(s) < 4 {
		return 0, 0
	}
	var r rune
	for i := 0; i < 4; i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, 0
		}
	}
	return r, 4
}
