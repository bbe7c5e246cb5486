package azcred

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

const bearerTransportName = "BearerTransport"

// BearerTransportOptions contains the parameters of a [BearerTransport].
// Scopes is required; the other fields are optional.
type BearerTransportOptions struct {
	// Scopes maps each host that receives tokens to the scopes its tokens are
	// for, such as
	//
	//	map[string][]string{"graph.microsoft.com": {"https://graph.microsoft.com/.default"}}
	//
	// A key is a host exactly as it appears in a URL, with a port when the
	// service does not listen on its scheme's default port
	// ("127.0.0.1:8443"); it has no scheme, path or wildcard. A key without a
	// port matches its scheme's default port (443 for https, 80 for http).
	// Hosts are compared case-insensitively and nothing else matches: not a
	// subdomain, not another port. A request to any host not listed here, a redirect
	// target included, is sent without a token. Required, at least one host;
	// no environment variable.
	Scopes map[string][]string

	// Base sends the requests once the token is added. Default:
	// [http.DefaultTransport].
	Base http.RoundTripper

	// Logger receives the transport's diagnostics: claims challenges answered
	// or passed through, requests refused. Records never contain a token or
	// the Authorization header. Default: discard.
	Logger *slog.Logger
}

// BearerTransport is an [http.RoundTripper] that authorizes requests to the
// hosts listed in its options with bearer tokens from a [TokenCredential].
// Use it for services that have no Azure SDK client, such as Microsoft Graph
// or Azure Resource Manager's REST API called directly.
//
// For a request to a listed host it gets a token (the credential caches it,
// so every request may ask), adds "Authorization: Bearer <token>" to a copy
// of the request (the caller's request is never modified, so an
// [http.Client] that follows a redirect starts from a request without a
// token) and sends the copy with its Base transport. It asks for tokens with
// continuous access evaluation (CAE) enabled: when the service answers 401
// with a Bearer challenge whose error is "insufficient_claims", it gets a new
// token with the challenge's claims and sends the request once more,
// provided the request's body can be sent again (it has none, or GetBody is
// set, as [http.NewRequest] does for in-memory bodies); otherwise, and for
// every other 401, the response is returned as it came.
//
// It refuses (with an error, before anything is sent) to send a token over
// plain http to any host but a loopback one (127.0.0.0/8, ::1, "localhost").
// Requests to other hosts pass through unchanged.
//
// A BearerTransport is safe for concurrent use.
type BearerTransport struct {
	cred   TokenCredential
	hosts  map[string][]string // canonical host → scopes
	base   http.RoundTripper
	logger *slog.Logger
}

// NewBearerTransport constructs a BearerTransport that authorizes requests
// with tokens from cred. options is required: its Scopes says which hosts
// receive tokens, and for which scopes. Options are copied.
func NewBearerTransport(cred TokenCredential, options *BearerTransportOptions) (*BearerTransport, error) {
	if cred == nil {
		return nil, errors.New(bearerTransportName + ": the credential is nil; pass the TokenCredential whose tokens the transport should send")
	}
	if options == nil || len(options.Scopes) == 0 {
		return nil, errors.New(bearerTransportName + ": no host is listed in Scopes; set BearerTransportOptions.Scopes to the hosts that may receive tokens and their scopes, such as {\"graph.microsoft.com\": {\"https://graph.microsoft.com/.default\"}}")
	}
	t := &BearerTransport{
		cred:   cred,
		hosts:  make(map[string][]string, len(options.Scopes)),
		base:   options.Base,
		logger: options.Logger,
	}
	if t.base == nil {
		t.base = http.DefaultTransport
	}
	if t.logger == nil {
		t.logger = discardLogger
	}
	for host, scopes := range options.Scopes {
		key, err := canonicalHostKey(host)
		if err != nil {
			return nil, err
		}
		if err := validateScopes(bearerTransportName+" (host "+host+")", scopes); err != nil {
			return nil, err
		}
		if _, dup := t.hosts[key]; dup {
			return nil, fmt.Errorf("%s: the host %q is listed twice in Scopes (host names are compared case-insensitively, and a default port equals no port); list it once", bearerTransportName, host)
		}
		t.hosts[key] = slices.Clone(scopes)
	}
	return t, nil
}

// NewBearerClient returns an [*http.Client] whose transport is a
// [BearerTransport] built by [NewBearerTransport] from cred and options. The
// client follows redirects as [http.Client] does; a redirect to a host not
// listed in Scopes is sent without a token.
func NewBearerClient(cred TokenCredential, options *BearerTransportOptions) (*http.Client, error) {
	t, err := NewBearerTransport(cred, options)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: t}, nil
}

// RoundTrip implements [http.RoundTripper]. It returns the credential's error
// (matchable with [errors.As]) when no token can be had, and closes the
// request's body on every path, as the RoundTripper contract asks.
func (t *BearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		closeRequestBody(req.Body)
		return nil, errors.New(bearerTransportName + ": the request has no URL")
	}
	scopes, listed := t.hosts[canonicalRequestHost(req.URL)]
	if !listed {
		return t.base.RoundTrip(req)
	}
	host := req.URL.Host
	if !strings.EqualFold(req.URL.Scheme, "https") && !isLoopbackHost(req.URL.Hostname()) {
		closeRequestBody(req.Body)
		t.logger.Warn(bearerTransportName+" refused to send a token over plain http", "host", host)
		return nil, fmt.Errorf("%s: refusing to send a token to %s over %s; use an https URL (plain http is allowed only to loopback hosts)", bearerTransportName, host, req.URL.Scheme)
	}
	opts := TokenRequestOptions{Scopes: scopes, EnableCAE: true}
	res, err := t.send(req, opts, req.Body)
	if err != nil || res.StatusCode != http.StatusUnauthorized {
		return res, err
	}
	claims, found, perr := claimsChallenge(res.Header.Values("WWW-Authenticate"))
	switch {
	case perr != nil:
		t.logger.Warn(bearerTransportName+" passed a 401 through: its WWW-Authenticate header is malformed", "host", host, "reason", perr.Error())
		return res, nil
	case !found:
		return res, nil
	}
	body, replayable, err := replayBody(req)
	if !replayable {
		t.logger.Warn(bearerTransportName+" passed a claims challenge through: the request's body cannot be sent again (set Request.GetBody)", "host", host)
		return res, nil
	}
	if err != nil {
		t.logger.Warn(bearerTransportName+" passed a claims challenge through: GetBody failed", "host", host, "error", err.Error())
		return res, nil
	}
	discardResponse(res)
	t.logger.Debug(bearerTransportName+" is answering a claims challenge with a new token", "host", host)
	opts.Claims = claims
	return t.send(req, opts, body)
}

// send gets a token for opts and sends a copy of req with body and the token.
func (t *BearerTransport) send(req *http.Request, opts TokenRequestOptions, body io.ReadCloser) (*http.Response, error) {
	tok, err := t.cred.GetToken(req.Context(), opts)
	if err != nil {
		closeRequestBody(body)
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Body = body
	r.Header.Set("Authorization", "Bearer "+tok.Token)
	return t.base.RoundTrip(r)
}

// CloseIdleConnections closes the idle connections of the Base transport
// when it has such a method, as [http.Client.CloseIdleConnections] expects.
func (t *BearerTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// String describes the transport: the hosts it sends tokens to.
func (t *BearerTransport) String() string {
	hosts := make([]string, 0, len(t.hosts))
	for h := range t.hosts {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	return bearerTransportName + "{hosts: [" + strings.Join(hosts, " ") + "]}"
}

// replayBody returns a fresh copy of req's body for a second try, and whether
// one can be had.
func replayBody(req *http.Request) (io.ReadCloser, bool, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req.Body, true, nil
	}
	if req.GetBody == nil {
		return nil, false, nil
	}
	b, err := req.GetBody()
	return b, true, err
}

func closeRequestBody(b io.ReadCloser) {
	if b != nil {
		_ = b.Close()
	}
}

// discardResponse reads a little of res's body, so that its connection can
// be reused, and closes it.
func discardResponse(res *http.Response) {
	_, _ = io.CopyN(io.Discard, res.Body, 64<<10)
	_ = res.Body.Close()
}

// canonicalHostKey checks a key of BearerTransportOptions.Scopes and returns
// it in the form canonicalRequestHost gives: lower case, without a default
// port (":443" or ":80").
func canonicalHostKey(key string) (string, error) {
	fail := func(why string) error {
		return fmt.Errorf("%s: the Scopes key %q is not a host: %s; give a host as it appears in a URL, such as \"graph.microsoft.com\" or \"127.0.0.1:8443\"", bearerTransportName, key, why)
	}
	switch {
	case key == "":
		return "", fail("it is empty")
	case strings.Contains(key, "://"):
		return "", fail("it has a scheme")
	case strings.ContainsAny(key, "/?#@ \t"):
		return "", fail("it has a path, query, user information or spaces")
	case strings.Contains(key, "*"):
		return "", fail("wildcards are not supported; list each host")
	case strings.Count(key, ":") > 1 && !strings.HasPrefix(key, "["):
		return "", fail("an IPv6 address goes in brackets, such as \"[::1]:8443\"")
	}
	u, err := url.Parse("https://" + key)
	if err != nil || u.Host != key || u.Hostname() == "" {
		return "", fail("it does not parse as host[:port] (an IPv6 address goes in brackets)")
	}
	if p := u.Port(); p != "" && p != "443" && p != "80" {
		return strings.ToLower(key), nil
	}
	return hostOnly(strings.ToLower(u.Hostname())), nil
}

// canonicalRequestHost returns u's host in lower case, without the scheme's
// default port.
func canonicalRequestHost(u *url.URL) string {
	host := u.Host
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		port := host[i+1:]
		if port == "" || strings.EqualFold(u.Scheme, "https") && port == "443" || strings.EqualFold(u.Scheme, "http") && port == "80" {
			host = host[:i]
		}
	}
	return strings.ToLower(host)
}

// hostOnly puts an IPv6 address back in brackets.
func hostOnly(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

// Claims challenges.

// authChallenge is one challenge of a WWW-Authenticate header: its scheme and
// parameters (names in lower case), or its token68.
type authChallenge struct {
	scheme  string
	token68 string
	params  map[string]string
}

// claimsChallenge looks for a Bearer challenge with error="insufficient_claims"
// in a 401's WWW-Authenticate values and returns its claims, decoded. It
// returns an error when a header value does not parse or when such a
// challenge's claims are not base64 (standard or URL-safe, padded or not) of
// a JSON object.
func claimsChallenge(values []string) (claims string, found bool, err error) {
	challenges, err := parseChallenges(values)
	if err != nil {
		return "", false, err
	}
	for _, c := range challenges {
		if !strings.EqualFold(c.scheme, "Bearer") || c.params["error"] != "insufficient_claims" {
			continue
		}
		raw, ok := c.params["claims"]
		if !ok || raw == "" {
			return "", false, errors.New("an insufficient_claims challenge has no claims")
		}
		decoded, err := decodeChallengeClaims(raw)
		if err != nil {
			return "", false, err
		}
		return decoded, true, nil
	}
	return "", false, nil
}

// decodeChallengeClaims decodes a challenge's claims parameter.
func decodeChallengeClaims(raw string) (string, error) {
	s := strings.TrimRight(strings.TrimSpace(raw), "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return "", errors.New("the claims of an insufficient_claims challenge are not base64")
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(b, &obj) != nil || obj == nil {
		return "", errors.New("the claims of an insufficient_claims challenge are not a JSON object")
	}
	return string(b), nil
}

// parseChallenges parses WWW-Authenticate header values (RFC 9110, section
// 11.6.1): each a comma-separated list of challenges, each a scheme followed
// by a token68 or by comma-separated name=value parameters whose values are
// tokens or quoted strings. It is lenient where servers are sloppy (empty
// list elements, '=' inside an unquoted value) and strict about structure.
func parseChallenges(values []string) ([]authChallenge, error) {
	var out []authChallenge
	for _, v := range values {
		p := challengeParser{s: v}
		cs, err := p.parse()
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

type challengeParser struct {
	s string
	i int
}

func (p *challengeParser) parse() ([]authChallenge, error) {
	var out []authChallenge
	for {
		p.skipListSeparators()
		if p.done() {
			return out, nil
		}
		scheme := p.token()
		if scheme == "" {
			return nil, fmt.Errorf("expected an authentication scheme at byte %d", p.i)
		}
		c := authChallenge{scheme: scheme}
		spaces := p.skipSpaces()
		if p.done() || p.peek() == ',' {
			out = append(out, c)
			continue
		}
		if spaces == 0 {
			return nil, fmt.Errorf("expected a space after the scheme %q", scheme)
		}
		if t68, ok := p.token68(); ok {
			c.token68 = t68
			out = append(out, c)
			continue
		}
		params, err := p.params()
		if err != nil {
			return nil, err
		}
		c.params = params
		out = append(out, c)
	}
}

// params reads name=value pairs until the input ends or the next list
// element is a new challenge.
func (p *challengeParser) params() (map[string]string, error) {
	params := map[string]string{}
	for {
		name := p.token()
		if name == "" {
			return nil, fmt.Errorf("expected a parameter name at byte %d", p.i)
		}
		p.skipSpaces()
		if p.done() || p.peek() != '=' {
			return nil, fmt.Errorf("expected '=' after the parameter %q", name)
		}
		p.i++
		p.skipSpaces()
		value, err := p.value()
		if err != nil {
			return nil, err
		}
		name = strings.ToLower(name)
		if _, dup := params[name]; !dup {
			params[name] = value
		}
		p.skipSpaces()
		if p.done() {
			return params, nil
		}
		if p.peek() != ',' {
			return nil, fmt.Errorf("expected ',' after the parameter %q", name)
		}
		p.skipListSeparators()
		if p.done() || !p.atParam() {
			return params, nil
		}
	}
}

// value reads a quoted string (with backslash escapes) or an unquoted value
// that ends at a comma or white space.
func (p *challengeParser) value() (string, error) {
	if p.done() {
		return "", errors.New("a parameter has no value")
	}
	if p.peek() != '"' {
		start := p.i
		for !p.done() && p.peek() != ',' && p.peek() != ' ' && p.peek() != '\t' && p.peek() != '"' {
			p.i++
		}
		if p.i == start {
			return "", fmt.Errorf("a parameter has no value at byte %d", start)
		}
		return p.s[start:p.i], nil
	}
	p.i++
	var b strings.Builder
	for !p.done() {
		c := p.s[p.i]
		switch c {
		case '"':
			p.i++
			return b.String(), nil
		case '\\':
			if p.i+1 >= len(p.s) {
				return "", errors.New("a quoted value ends with a backslash")
			}
			b.WriteByte(p.s[p.i+1])
			p.i += 2
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return "", errors.New("a quoted value is not closed")
}

// atParam reports whether the input at p.i is "name =", the start of another
// parameter, rather than "scheme " or "scheme," (a new challenge, which
// never has '=' right after its scheme).
func (p *challengeParser) atParam() bool {
	q := *p
	if q.token() == "" {
		return false
	}
	q.skipSpaces()
	return !q.done() && q.peek() == '='
}

// token68 reads a token68 (RFC 9110: letters, digits, "-._~+/", then '='
// padding) when it makes up the rest of the list element.
func (p *challengeParser) token68() (string, bool) {
	j := p.i
	for j < len(p.s) && isToken68Char(p.s[j]) {
		j++
	}
	if j == p.i {
		return "", false
	}
	k := j
	for k < len(p.s) && p.s[k] == '=' {
		k++
	}
	end := k
	for end < len(p.s) && (p.s[end] == ' ' || p.s[end] == '\t') {
		end++
	}
	if end < len(p.s) && p.s[end] != ',' {
		return "", false
	}
	t := p.s[p.i:k]
	p.i = end
	return t, true
}

func (p *challengeParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *challengeParser) skipSpaces() int {
	start := p.i
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
	return p.i - start
}

func (p *challengeParser) skipListSeparators() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == ',') {
		p.i++
	}
}

func (p *challengeParser) done() bool { return p.i >= len(p.s) }
func (p *challengeParser) peek() byte { return p.s[p.i] }

// isTokenChar reports whether c is a tchar (RFC 9110, section 5.6.2).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken68Char(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-._~+/", c) >= 0
}

var _ http.RoundTripper = (*BearerTransport)(nil)
