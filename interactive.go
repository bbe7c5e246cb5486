package azcred

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/internal/oauth"
)

const credNameInteractiveBrowser = "InteractiveBrowserCredential"

// defaultBrowserTimeout is how long a person may take to sign in.
const defaultBrowserTimeout = 5 * time.Minute

// InteractiveBrowserCredentialOptions contains optional parameters for
// InteractiveBrowserCredential.
type InteractiveBrowserCredentialOptions struct {
	ClientOptions

	// AdditionallyAllowedTenants lists tenants, besides the credential's own,
	// that a request's TenantID may name; "*" allows any. Default: the
	// ';'-separated AZURE_ADDITIONALLY_ALLOWED_TENANTS environment variable.
	AdditionallyAllowedTenants []string

	// AuthenticationRecord names the account to get tokens for silently,
	// from an earlier [InteractiveBrowserCredential.Authenticate] (with
	// Cache, in an earlier run). Default: none; the first token signs a
	// user in.
	AuthenticationRecord AuthenticationRecord

	// Cache keeps the account's refresh tokens between runs, such as a
	// [cache.FileStore]. Default: none, refresh tokens live in memory only.
	Cache cache.Store

	// ClientID is the public client application to sign in to; its
	// registration must list "http://localhost" as a redirect URI of a
	// mobile and desktop platform. Default: the Azure development sign-on
	// application, "04b07795-8ddb-461a-bbee-02f9e1bf7b46". No environment
	// variable.
	ClientID string

	// DisableAutomaticAuthentication makes GetToken return an
	// [*AuthenticationRequiredError] instead of opening a browser when it
	// needs a person; call Authenticate then. Default: false.
	DisableAutomaticAuthentication bool

	// DomainHint is the domain of the account, such as "contoso.com", which
	// lets the authority go straight to that organisation's sign-in.
	// Default: none.
	DomainHint string

	// LoginHint preselects the account, such as "user@contoso.com". Default:
	// none, the user picks.
	LoginHint string

	// RedirectURL is the redirect URI, "http://localhost:<port>[/path]",
	// when the app registration requires a fixed port. The credential
	// listens on that port of 127.0.0.1 (and ::1). Default:
	// "http://localhost:<a free port the system picks>".
	RedirectURL string

	// TenantID is the tenant to sign in to. Default: "organizations" (any
	// work or school account; the account's own tenant afterwards). No
	// environment variable.
	TenantID string

	// Timeout is how long the credential waits for the person to finish
	// signing in. Default: 5 minutes.
	Timeout time.Duration

	// openBrowser opens url in a browser (a test seam). Default: the
	// platform's opener; when it fails, the URL is printed to stderr.
	openBrowser func(ctx context.Context, url string) error
}

// InteractiveBrowserCredential signs a user in through the system browser
// with the authorization code flow and PKCE: it listens on a loopback port
// for the authority's answer, exchanges the code and keeps the account's
// refresh token.
//
// Tokens are cached per credential and refreshed silently with the refresh
// token; the browser opens again only when it is refused. Sign-ins run one
// at a time, in the calling goroutine: the caller's context, or Timeout,
// ends one. An InteractiveBrowserCredential is safe for concurrent use.
type InteractiveBrowserCredential struct {
	client      *publicClient
	redirect    *url.URL // nil: http://localhost:<free port>
	loginHint   string
	domainHint  string
	timeout     time.Duration
	openBrowser func(ctx context.Context, url string) error
}

// NewInteractiveBrowserCredential constructs an
// InteractiveBrowserCredential. Pass nil to accept default options.
func NewInteractiveBrowserCredential(options *InteractiveBrowserCredentialOptions) (*InteractiveBrowserCredential, error) {
	if options == nil {
		options = &InteractiveBrowserCredentialOptions{}
	}
	o := *options
	if o.Timeout < 0 {
		return nil, errors.New(credNameInteractiveBrowser + ": Timeout is negative; give how long a person may take to sign in, or zero for 5 minutes")
	}
	if o.Timeout == 0 {
		o.Timeout = defaultBrowserTimeout
	}
	c := &InteractiveBrowserCredential{loginHint: o.LoginHint, domainHint: o.DomainHint, timeout: o.Timeout, openBrowser: o.openBrowser}
	if o.RedirectURL != "" {
		u, err := parseRedirectURL(o.RedirectURL)
		if err != nil {
			return nil, err
		}
		c.redirect = u
	}
	if c.openBrowser == nil {
		c.openBrowser = openSystemBrowser
	}
	client, err := newPublicClient(publicConfig{
		name:          credNameInteractiveBrowser,
		tenantID:      o.TenantID,
		clientID:      o.ClientID,
		options:       &o.ClientOptions,
		allowed:       o.AdditionallyAllowedTenants,
		record:        o.AuthenticationRecord,
		disableAuto:   o.DisableAutomaticAuthentication,
		store:         o.Cache,
		signInTimeout: o.Timeout + time.Minute,
	})
	if err != nil {
		return nil, err
	}
	client.interact = c.signIn
	c.client = client
	return c, nil
}

func parseRedirectURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	const how = `; use "http://localhost:<port>", with the port registered on the app`
	if err != nil {
		return nil, errors.New(credNameInteractiveBrowser + ": RedirectURL is not a URL" + how)
	}
	if u.Scheme != "http" || u.Hostname() != "localhost" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%s: RedirectURL %q must be http://localhost with a port and no query%s", credNameInteractiveBrowser, raw, how)
	}
	if p, err := strconv.Atoi(u.Port()); err != nil || p <= 0 || p > 65535 {
		return nil, fmt.Errorf("%s: RedirectURL %q has no valid port%s", credNameInteractiveBrowser, raw, how)
	}
	return u, nil
}

// GetToken returns an access token for the scopes in opts: from the cache,
// else silently with the account's refresh token, else by signing a user
// in through the browser (unless DisableAutomaticAuthentication is set).
func (c *InteractiveBrowserCredential) GetToken(ctx context.Context, opts TokenRequestOptions) (AccessToken, error) {
	return c.client.getToken(ctx, opts)
}

// Authenticate signs a user in through the browser and returns the
// account's record, to pass as AuthenticationRecord later. opts may be nil;
// its Scopes default to the cloud's Azure Resource Manager
// ("https://management.azure.com/.default" in the public cloud).
func (c *InteractiveBrowserCredential) Authenticate(ctx context.Context, opts *TokenRequestOptions) (AuthenticationRecord, error) {
	return c.client.authenticate(ctx, opts)
}

// signIn runs the authorization code flow with PKCE through the browser.
func (c *InteractiveBrowserCredential) signIn(ctx context.Context, endpoint string, r cache.Request) (*oauth.UserToken, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	pkce, err := oauth.NewPKCE()
	if err != nil {
		return nil, err
	}
	state, err := oauth.RandomState()
	if err != nil {
		return nil, err
	}
	l, err := listenLoopback(c.redirect, state)
	if err != nil {
		return nil, err
	}
	defer l.close()
	authorize, err := oauth.AuthorizeEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	u, err := oauth.AuthorizeRequest{
		Endpoint: authorize, ClientID: c.client.clientID, RedirectURI: l.redirectURI, Scopes: r.Scopes,
		State: state, Challenge: pkce.Challenge, ResponseMode: "form_post",
		LoginHint: c.loginHint, DomainHint: c.domainHint, Prompt: "select_account",
		Claims: r.Claims, EnableCAE: r.EnableCAE,
	}.URL()
	if err != nil {
		return nil, err
	}
	if err := c.openBrowser(ctx, u); err != nil {
		c.client.logger.LogAttrs(ctx, slog.LevelWarn, credNameInteractiveBrowser+": no browser could be opened; the sign-in URL is printed to stderr", slog.String("error", err.Error()))
		fmt.Fprintf(os.Stderr, "%s: open this URL in a browser to sign in:\n%s\n", credNameInteractiveBrowser, u)
	}
	var res redirectResult
	select {
	case res = <-l.result:
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("no sign-in within %s: finish signing in in the browser sooner, or raise Timeout: %w", c.timeout, ctx.Err())
		}
		return nil, ctx.Err()
	}
	l.close()
	if res.err != "" {
		return nil, fmt.Errorf("the authority refused the sign-in (%s): %s", res.err, res.description)
	}
	return c.client.oauth.AuthorizationCode(ctx, oauth.AuthCodeParams{
		Params:   oauth.Params{Endpoint: endpoint, ClientID: c.client.clientID, Scopes: r.Scopes, Claims: r.Claims, EnableCAE: r.EnableCAE},
		Code:     res.code,
		Verifier: pkce.Verifier,
		// The redirect URI of the request, exactly.
		RedirectURI: l.redirectURI,
	})
}

// redirectResult is what the authority sent to the redirect URI.
type redirectResult struct {
	code             string
	err, description string
}

// loopback is the redirect listener: 127.0.0.1 and, where the system has
// IPv6, ::1 on the same port.
type loopback struct {
	redirectURI string
	result      chan redirectResult
	srv         *http.Server
	done        chan struct{} // closed when every Serve has returned
	closeOnce   sync.Once

	mu        sync.Mutex
	delivered bool
}

// Pages the listener answers with. They never repeat what was sent.
const (
	successPage = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Signed in</title></head><body><h1>Signed in</h1><p>Authentication is complete. You can close this window and return to the application.</p></body></html>\n"
	failurePage = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Sign-in failed</title></head><body><h1>Sign-in failed</h1><p>This sign-in response was not accepted. Close this window and check the application for details.</p></body></html>\n"
)

// listenLoopback listens for the redirect. With redirect nil it takes a
// free port on 127.0.0.1 and the same port on ::1, trying another pair when
// ::1 has it taken; ::1 is skipped where the system has no IPv6.
func listenLoopback(redirect *url.URL, state string) (*loopback, error) {
	port, path := 0, "/"
	if redirect != nil {
		port, _ = strconv.Atoi(redirect.Port())
		if redirect.Path != "" {
			path = redirect.Path
		}
	}
	var lns []net.Listener
	for attempt := 0; ; attempt++ {
		v4, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return nil, fmt.Errorf("listening for the sign-in redirect on 127.0.0.1: %w", err)
		}
		got := v4.Addr().(*net.TCPAddr).Port
		v6, err := net.Listen("tcp", net.JoinHostPort("::1", strconv.Itoa(got)))
		if err == nil {
			lns = []net.Listener{v4, v6}
			port = got
			break
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			lns = []net.Listener{v4} // no IPv6 loopback here
			port = got
			break
		}
		_ = v4.Close()
		if redirect != nil || attempt == 9 {
			return nil, fmt.Errorf("listening for the sign-in redirect: port %d is taken on ::1: %w", got, err)
		}
	}
	l := &loopback{
		redirectURI: "http://localhost:" + strconv.Itoa(port),
		result:      make(chan redirectResult, 1),
		done:        make(chan struct{}),
	}
	if redirect != nil {
		l.redirectURI = redirect.String()
	}
	mux := http.NewServeMux()
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) { l.serve(w, r, state) })
	l.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = l.srv.Serve(ln)
		}()
	}
	go func() {
		wg.Wait()
		close(l.done)
	}()
	return l, nil
}

// serve takes the authority's answer, by POST (form_post) or GET (query):
// the first whose state matches is the answer; any other is refused.
func (l *loopback) serve(w http.ResponseWriter, r *http.Request, state string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'")
	h.Set("Connection", "close")
	refuse := func(status int) {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, failurePage)
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		refuse(http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		refuse(http.StatusBadRequest)
		return
	}
	v := r.Form
	got := v.Get("state")
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(state)) != 1 {
		refuse(http.StatusBadRequest)
		return
	}
	res := redirectResult{code: v.Get("code"), err: v.Get("error"), description: v.Get("error_description")}
	if res.code == "" && res.err == "" {
		refuse(http.StatusBadRequest)
		return
	}
	l.mu.Lock()
	first := !l.delivered
	l.delivered = true
	l.mu.Unlock()
	if !first {
		refuse(http.StatusConflict)
		return
	}
	l.result <- res
	if res.err != "" {
		refuse(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, successPage)
}

// close stops listening and waits until the listener's goroutines have
// returned; a response being written gets a moment to finish.
func (l *loopback) close() {
	l.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if l.srv.Shutdown(ctx) != nil {
			_ = l.srv.Close()
		}
		<-l.done
	})
}

// openSystemBrowser opens url with the platform's opener. The opener is
// started, not waited for: on Linux xdg-open may run the browser itself in
// the foreground, and killing it would end the sign-in. It is reaped in the
// background; an opener that fails at once is reported so the URL is printed
// instead.
func openSystemBrowser(_ context.Context, u string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	case "darwin":
		cmd = exec.Command("open", u)
	default:
		path, err := exec.LookPath("xdg-open")
		if err != nil {
			return errors.New("xdg-open is not installed")
		}
		cmd = exec.Command(path, u)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	// The browser lives as long as the user wants it to; this goroutine
	// only collects the opener's exit status so that it is not left a zombie.
	go func() { _ = cmd.Wait() }()
	return nil
}

// String describes the credential.
func (c InteractiveBrowserCredential) String() string {
	return describe(credNameInteractiveBrowser, c.client.describe()...).String()
}

// GoString is String.
func (c InteractiveBrowserCredential) GoString() string { return c.String() }

// LogValue implements [slog.LogValuer].
func (c InteractiveBrowserCredential) LogValue() slog.Value {
	return describe(credNameInteractiveBrowser, c.client.describe()...).LogValue()
}

var _ TokenCredential = (*InteractiveBrowserCredential)(nil)
