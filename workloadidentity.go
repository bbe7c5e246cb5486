package azcred

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/env"
	"github.com/azcred/azcred/internal/httpx"
	"github.com/azcred/azcred/internal/jwtx"
	"github.com/azcred/azcred/internal/oauth"
)

const credNameWorkloadIdentity = "WorkloadIdentityCredential"

const (
	// maxTokenFileSize bounds the token file: a service-account token is
	// about a kilobyte.
	maxTokenFileSize = 64 << 10
	// maxCAFileSize bounds the AKS token proxy's CA file.
	maxCAFileSize = 1 << 20
	// tokenFileMaxAge is how long a token read from the file is used
	// without reading the file again, when its modification time has not
	// changed. The kubelet rotates tokens at 80% of their lifetime (at
	// least an hour), so five minutes is far within it.
	tokenFileMaxAge = 5 * time.Minute
	// assertionExpiryMargin: a held token this close to its own exp is read
	// again before it is sent.
	assertionExpiryMargin = time.Minute
)

// WorkloadIdentityCredentialOptions contains optional parameters for
// WorkloadIdentityCredential.
type WorkloadIdentityCredentialOptions struct {
	ClientOptions

	// ClientID is the client ID of the app registration or user-assigned
	// managed identity that trusts the service account. Default: the
	// AZURE_CLIENT_ID environment variable.
	ClientID string

	// TenantID is the tenant of that app or identity. Default: the
	// AZURE_TENANT_ID environment variable.
	TenantID string

	// TokenFilePath is the projected service-account token file. Default:
	// the AZURE_FEDERATED_TOKEN_FILE environment variable.
	TokenFilePath string

	// AdditionallyAllowedTenants lists tenants, besides the credential's own,
	// that a request's TenantID may name; "*" allows any. Default: the
	// ';'-separated AZURE_ADDITIONALLY_ALLOWED_TENANTS environment variable.
	AdditionallyAllowedTenants []string

	// DisableInstanceDiscovery is accepted for compatibility with azidentity.
	// azcred never sends discovery requests, so it has no effect. Default:
	// false.
	DisableInstanceDiscovery bool

	// EnableAzureProxy sends token requests through the AKS token proxy
	// (identity binding) that the environment describes:
	// AZURE_KUBERNETES_TOKEN_PROXY (an https URL with no user information,
	// query or fragment), AZURE_KUBERNETES_CA_FILE or
	// AZURE_KUBERNETES_CA_DATA (the proxy's CA, PEM; not both) and
	// AZURE_KUBERNETES_SNI_NAME (the TLS server name to send). A request to
	// "<authority>/<path>?<query>" goes to "<proxy URL><path>?<query>"; the
	// CA file is read again for every request and a changed CA is used at
	// once. When none of these variables is set, requests go to the
	// authority directly. Default: false.
	EnableAzureProxy bool

	// Cache keeps access tokens in a persistent store (such as
	// [cache.NewFileStore], or a Redis store shared by a fleet) as well as in
	// memory, so that later runs of the program, and other processes
	// sharing the store, reuse them until they are due for refresh.
	// Default: nil, memory only.
	Cache cache.Store

	// DisableTokenSharing gives the credential an in-memory token cache of
	// its own. By default credentials of this process built with the same
	// tenant, client ID, token file and options (the same Transport,
	// Logger, Retry and Cache values) share one, so that a credential built
	// per request costs one token request per token lifetime, not one per
	// credential. Default: false.
	DisableTokenSharing bool

	// files reads the token and CA files; tests count its reads.
	files fileReader
}

// fileReader is how the credential reads its files: stat follows symbolic
// links, as Kubernetes' "..data" links need; read returns at most limit+1
// bytes, so that the caller can tell a file is too large.
type fileReader interface {
	stat(path string) (fs.FileInfo, error)
	read(path string, limit int64) ([]byte, fs.FileInfo, error)
}

type osFiles struct{}

func (osFiles) stat(path string) (fs.FileInfo, error) { return os.Stat(path) }

func (osFiles) read(path string, limit int64) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if fi.IsDir() {
		return nil, nil, errors.New("it is a directory")
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	return data, fi, err
}

// WorkloadIdentityCredential authenticates a workload on Kubernetes (AKS
// workload identity, or any cluster whose service-account issuer an app
// trusts) by exchanging its projected service-account token for an Entra ID
// token, as a client assertion.
//
// The token file is read when a token request needs it, and read again when
// its modification time changes (the kubelet swaps its "..data" link), when
// the token held was read more than five minutes ago, or when the token
// held is within a minute of its own "exp": a rotated file is used by the
// next token request, without a restart, and an expired token is never
// sent. The same file content serves every scope. Access tokens are cached
// and refreshed before they expire; the credential is safe for concurrent
// use and prints without secrets.
//
// When Entra ID refuses the federation (no federated credential for the
// token's issuer, subject or audience, or a token outside its time range),
// the error names the token's iss, sub, aud and exp and what to check in
// the federated identity credential.
type WorkloadIdentityCredential struct {
	client *entraClient
	desc   description
}

// NewWorkloadIdentityCredential constructs a WorkloadIdentityCredential.
// Pass nil to accept default options, which read AZURE_CLIENT_ID,
// AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE. Values read from the
// environment are trimmed of surrounding whitespace.
//
// Without a token file path it gives a [*CredentialUnavailableError] naming
// the options and variables to set. A token file path selects workload
// identity: with it, a missing client ID or tenant ID, like an invalid AKS
// token proxy configuration, gives an error (not unavailable) that names
// the variable and says what is wrong. The token file itself is read by
// GetToken; a missing or unreadable file fails there.
func NewWorkloadIdentityCredential(options *WorkloadIdentityCredentialOptions) (*WorkloadIdentityCredential, error) {
	o := WorkloadIdentityCredentialOptions{}
	if options != nil {
		o = *options
	}
	co := o.ClientOptions
	getenv := co.getenvOrOS()
	fallback := func(v, name string) string {
		if v == "" {
			v = strings.TrimSpace(getenv(name))
		}
		return v
	}
	o.ClientID = fallback(o.ClientID, env.ClientID)
	o.TenantID = fallback(o.TenantID, env.TenantID)
	o.TokenFilePath = fallback(o.TokenFilePath, env.FederatedTokenFile)
	var missing []string
	for _, m := range []struct{ v, option, name string }{
		{o.ClientID, "ClientID", env.ClientID},
		{o.TenantID, "TenantID", env.TenantID},
		{o.TokenFilePath, "TokenFilePath", env.FederatedTokenFile},
	} {
		if m.v == "" {
			missing = append(missing, fmt.Sprintf("%s (option %s)", m.name, m.option))
		}
	}
	const how = "; on AKS, label the pod azure.workload.identity/use: \"true\" and give its service account the azure.workload.identity/client-id annotation, or set the missing values"
	switch {
	case len(missing) > 0 && o.TokenFilePath != "":
		// A token file selects workload identity: a chain must stop here
		// rather than authenticate as another identity (on AKS, the node's).
		return nil, fmt.Errorf("%s: %s selects workload identity, but %s %s not set%s", credNameWorkloadIdentity,
			env.FederatedTokenFile+" (option TokenFilePath)", strings.Join(missing, ", "), plural(len(missing), "is", "are"), how)
	case len(missing) > 0:
		return nil, NewCredentialUnavailableError(credNameWorkloadIdentity, "workload identity is not configured: missing "+strings.Join(missing, ", ")+how, nil)
	}
	if o.files == nil {
		o.files = osFiles{}
	}
	clk := clock.OrReal(co.clockOrNil())
	proxied := false
	if o.EnableAzureProxy {
		cfg, err := readProxyConfig(getenv)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", credNameWorkloadIdentity, err)
		}
		if cfg != nil {
			d, err := newProxyDoer(co.Transport, cfg, o.files, co.logger())
			if err != nil {
				return nil, fmt.Errorf("%s: %w", credNameWorkloadIdentity, err)
			}
			co.Transport = d
			proxied = true
		}
	}
	tf := &tokenFile{path: o.TokenFilePath, files: o.files, clock: clk}
	client, err := newEntraClient(entraConfig{
		name:     credNameWorkloadIdentity,
		tenantID: o.TenantID,
		clientID: o.ClientID,
		options:  &co,
		allowed:  o.AdditionallyAllowedTenants,
		store:    o.Cache,
		share:    shareUnless(o.DisableTokenSharing, shareParts{material: []string{o.TokenFilePath}, seam: o.files}),
		grant:    federatedGrant(credNameWorkloadIdentity, tf.get),
	})
	if err != nil {
		return nil, err
	}
	return &WorkloadIdentityCredential{
		client: client,
		desc: describe(credNameWorkloadIdentity, "tenantID", o.TenantID, "clientID", o.ClientID,
			"tokenFilePath", o.TokenFilePath, "azureProxy", fmt.Sprint(proxied)),
	}, nil
}

// GetToken returns an access token for the scopes in opts, from the cache
// when it holds one that is not due for refresh.
func (c *WorkloadIdentityCredential) GetToken(ctx context.Context, opts TokenRequestOptions) (AccessToken, error) {
	return c.client.getToken(ctx, opts)
}

// String describes the credential without the token.
func (c WorkloadIdentityCredential) String() string { return c.desc.String() }

// GoString is String, so that %#v shows no token.
func (c WorkloadIdentityCredential) GoString() string { return c.desc.String() }

// LogValue implements [slog.LogValuer] without the token.
func (c WorkloadIdentityCredential) LogValue() slog.Value { return c.desc.LogValue() }

// federatedGrant is the client credentials grant with an assertion from
// getAssertion; a federation refusal is explained with the claims of the
// assertion that was sent.
func federatedGrant(credential string, getAssertion func(context.Context) (string, error)) grantFunc {
	return func(ctx context.Context, c *oauth.Client, p oauth.Params) (*oauth.Token, error) {
		var sent string
		p.Auth.Assertion = func(ctx context.Context) (string, error) {
			a, err := getAssertion(ctx)
			sent = a
			return a, err
		}
		tok, err := c.ClientCredentials(ctx, p)
		if err == nil {
			return tok, nil
		}
		var af *AuthenticationFailedError
		if errors.As(err, &af) {
			return nil, af // the assertion source's own error, already explained
		}
		return nil, explainFederation(credential, err, sent)
	}
}

// tokenFile holds the service-account token read from a file, and reads the
// file again by the rules on [WorkloadIdentityCredential].
type tokenFile struct {
	path  string
	files fileReader
	clock clock.Clock

	mu     sync.Mutex
	value  string
	claims assertionClaims
	info   fs.FileInfo
	readAt time.Time
}

// get returns the token to send. It holds a mutex across the (local, small)
// file read so that concurrent requests read the file once.
func (t *tokenFile) get(context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock.Now()
	if t.value != "" && now.Sub(t.readAt) < tokenFileMaxAge && now.Before(t.claims.exp.Add(-assertionExpiryMargin)) {
		if fi, err := t.files.stat(t.path); err == nil && sameFile(fi, t.info) {
			return t.value, nil
		}
	}
	data, fi, err := t.files.read(t.path, maxTokenFileSize)
	if err != nil {
		return "", t.fail(fmt.Sprintf("cannot read the service-account token file %q", t.path),
			"check that the projected token volume is mounted and that AZURE_FEDERATED_TOKEN_FILE (option TokenFilePath) names it", err)
	}
	if len(data) > maxTokenFileSize {
		return "", t.fail(fmt.Sprintf("the service-account token file %q is larger than %d bytes, too large for a token", t.path, maxTokenFileSize),
			"check that AZURE_FEDERATED_TOKEN_FILE (option TokenFilePath) names the projected token file", nil)
	}
	value := strings.TrimSpace(string(data))
	if value == "" {
		return "", t.fail(fmt.Sprintf("the service-account token file %q is empty", t.path),
			"check that the kubelet has written the projected token", nil)
	}
	claims, err := readAssertionClaims(value)
	if err != nil {
		return "", t.fail(fmt.Sprintf("the service-account token file %q does not hold a JWT (%s)", t.path, err.Error()),
			"check that AZURE_FEDERATED_TOKEN_FILE (option TokenFilePath) names the projected service-account token", nil)
	}
	if !now.Before(claims.exp) {
		t.value = ""
		return "", t.fail(fmt.Sprintf("the service-account token in %q expired at %s (now %s); it was not sent", t.path,
			claims.exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)),
			"check that the kubelet rotates the projected token (the pod's volume and the node's health) and the machine's clock", nil)
	}
	t.value, t.claims, t.info, t.readAt = value, claims, fi, now
	return value, nil
}

func (t *tokenFile) fail(what, todo string, cause error) error {
	msg := what + "; " + todo
	return NewAuthenticationFailedError(credNameWorkloadIdentity, msg, cause)
}

// sameFile reports whether fi describes the file that held was read from,
// unchanged: the same file (a swapped "..data" link gives another one), the
// same modification time and size.
func sameFile(fi, held fs.FileInfo) bool {
	if fi == nil || held == nil {
		return false
	}
	if !fi.ModTime().Equal(held.ModTime()) || fi.Size() != held.Size() {
		return false
	}
	if fi.Sys() == nil && held.Sys() == nil {
		return true // not from the OS (a test's seam): no identity to compare
	}
	return os.SameFile(fi, held)
}

// assertionClaims are the non-secret claims of a federated assertion, shown
// when Entra ID refuses it.
type assertionClaims struct {
	iss, sub string
	aud      []string
	exp      time.Time
}

// readAssertionClaims decodes (without verifying) the claims of a JWT.
func readAssertionClaims(token string) (assertionClaims, error) {
	var raw struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Exp *float64        `json:"exp"`
	}
	if err := jwtx.DecodeClaims(token, &raw); err != nil {
		return assertionClaims{}, err
	}
	if raw.Exp == nil {
		return assertionClaims{}, errors.New("it has no exp claim")
	}
	c := assertionClaims{iss: raw.Iss, sub: raw.Sub, exp: time.Unix(int64(*raw.Exp), 0)}
	var one string
	if json.Unmarshal(raw.Aud, &one) == nil {
		c.aud = []string{one}
	} else {
		_ = json.Unmarshal(raw.Aud, &c.aud)
	}
	return c, nil
}

// federationRefusal is Entra ID's refusal of a federated assertion, with
// the assertion's non-secret claims and what to check.
type federationRefusal struct {
	err    error
	claims assertionClaims
	check  string
}

func (e *federationRefusal) Error() string {
	return fmt.Sprintf("%s The assertion sent has iss %q, sub %q, aud %q, exp %s. %s", e.err.Error(),
		e.claims.iss, e.claims.sub, e.claims.aud, e.claims.exp.UTC().Format(time.RFC3339), e.check)
}

func (e *federationRefusal) Unwrap() error { return e.err }

// explainFederation adds the assertion's claims to Entra ID's federation
// refusals. Other errors are returned as they are.
func explainFederation(credential string, err error, assertion string) error {
	var oe *oauth.Error
	if !errors.As(err, &oe) || assertion == "" {
		return err
	}
	claims, cerr := readAssertionClaims(assertion)
	if cerr != nil {
		return err
	}
	var check string
	switch oe.AADSTS {
	case "AADSTS700211":
		check = fmt.Sprintf("Check the Issuer of the federated identity credential: it must equal the assertion's iss, %q, exactly (trailing slash included); on AKS it is the cluster's OIDC issuer URL.", claims.iss)
	case "AADSTS700213":
		check = fmt.Sprintf("Check the Subject of the federated identity credential: it must equal the assertion's sub, %q, exactly (case included); on Kubernetes it is system:serviceaccount:<namespace>:<service account>.", claims.sub)
	case "AADSTS700212":
		check = fmt.Sprintf("Check the Audience of the federated identity credential: it must be one of the assertion's aud, %q, normally api://AzureADTokenExchange.", claims.aud)
	case "AADSTS70021":
		check = "No federated identity credential matches the assertion's iss, sub and aud together: check that the client ID names the app or managed identity that holds the federated credential, and compare its Issuer, Subject and Audience with these claims."
	case "AADSTS700024":
		check = fmt.Sprintf("The assertion's time range (exp %s) does not include Entra ID's current time: check that the token source rotates the token (the kubelet's projected volume) and the machine's clock.", claims.exp.UTC().Format(time.RFC3339))
	default:
		return err
	}
	return &federationRefusal{err: err, claims: claims, check: check}
}

// The AKS token proxy.

// proxyConfig is the AKS token proxy the environment describes.
type proxyConfig struct {
	url    *url.URL
	caFile string
	caData []byte
	sni    string
}

// readProxyConfig reads the AKS token proxy variables. It returns nil when
// none is set.
func readProxyConfig(getenv env.Getenv) (*proxyConfig, error) {
	raw := strings.TrimSpace(getenv(env.KubernetesTokenProxy))
	cfg := &proxyConfig{
		caFile: strings.TrimSpace(getenv(env.KubernetesCAFile)),
		caData: []byte(strings.TrimSpace(getenv(env.KubernetesCAData))),
		sni:    strings.TrimSpace(getenv(env.KubernetesSNIName)),
	}
	if raw == "" {
		var present []string
		for _, p := range []struct {
			set  bool
			name string
		}{
			{cfg.caFile != "", env.KubernetesCAFile}, {len(cfg.caData) > 0, env.KubernetesCAData}, {cfg.sni != "", env.KubernetesSNIName},
		} {
			if p.set {
				present = append(present, p.name)
			}
		}
		if len(present) > 0 {
			return nil, fmt.Errorf("%s is not set but %s %s; set %s to the proxy's https URL, or unset the others",
				env.KubernetesTokenProxy, strings.Join(present, ", "), plural(len(present), "is", "are"), env.KubernetesTokenProxy)
		}
		return nil, nil
	}
	u, err := url.Parse(raw)
	fail := func(why string) error {
		return fmt.Errorf("%s is not a valid token proxy URL: %s; use the form \"https://host[:port][/path]\"", env.KubernetesTokenProxy, why)
	}
	switch {
	case err != nil || u.Opaque != "":
		return nil, fail("it is not a URL")
	case !strings.EqualFold(u.Scheme, "https"):
		return nil, fail(fmt.Sprintf("its scheme is %q; the proxy must use https", u.Scheme))
	case u.User != nil:
		return nil, fail("it contains user information")
	case u.Hostname() == "":
		return nil, fail("it has no host")
	case u.RawQuery != "" || u.ForceQuery:
		return nil, fail("it has a query")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, fail("it has a fragment")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	cfg.url = u
	if cfg.caFile != "" && len(cfg.caData) > 0 {
		return nil, fmt.Errorf("both %s and %s are set; set only one of them", env.KubernetesCAFile, env.KubernetesCAData)
	}
	return cfg, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// proxyDoer sends token requests to the AKS token proxy: it rewrites their
// URL, trusts the proxy's CA, sends its SNI name, and picks up a changed CA
// file.
type proxyDoer struct {
	cfg    *proxyConfig
	files  fileReader
	logger *slog.Logger
	base   *http.Transport // the caller's transport, cloned

	mu     sync.Mutex
	caPEM  []byte
	client *http.Client
}

func newProxyDoer(transport Doer, cfg *proxyConfig, files fileReader, logger *slog.Logger) (*proxyDoer, error) {
	c, err := httpx.CloneClient(transport)
	if err != nil {
		return nil, fmt.Errorf("the AKS token proxy needs its own TLS settings: %w", err)
	}
	base, ok := c.Transport.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("the AKS token proxy needs its own TLS settings: %w", httpx.ErrCannotClone)
	}
	d := &proxyDoer{cfg: cfg, files: files, logger: logger, base: base}
	ca := cfg.caData
	if cfg.caFile != "" {
		if ca, err = d.readCA(); err != nil {
			return nil, err
		}
		if len(ca) == 0 {
			return nil, fmt.Errorf("the AKS token proxy's CA file %q (%s) is empty; check the mounted CA", cfg.caFile, env.KubernetesCAFile)
		}
	}
	if err := d.use(ca); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *proxyDoer) readCA() ([]byte, error) {
	data, _, err := d.files.read(d.cfg.caFile, maxCAFileSize)
	if err != nil {
		return nil, fmt.Errorf("cannot read the AKS token proxy's CA file %q (%s): %w", d.cfg.caFile, env.KubernetesCAFile, err)
	}
	if len(data) > maxCAFileSize {
		return nil, fmt.Errorf("the AKS token proxy's CA file %q (%s) is larger than %d bytes; check the mounted CA", d.cfg.caFile, env.KubernetesCAFile, maxCAFileSize)
	}
	return bytes.TrimSpace(data), nil
}

// use builds the client for the CA ca (PEM; empty keeps the transport's own
// roots). d.mu must be held, or d not yet shared.
func (d *proxyDoer) use(ca []byte) error {
	t := d.base.Clone()
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	} else {
		t.TLSClientConfig = t.TLSClientConfig.Clone()
	}
	if len(ca) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			from := env.KubernetesCAData
			if d.cfg.caFile != "" {
				from = fmt.Sprintf("%s (%q)", env.KubernetesCAFile, d.cfg.caFile)
			}
			return fmt.Errorf("the AKS token proxy's CA in %s holds no PEM certificate; check the mounted CA", from)
		}
		t.TLSClientConfig.RootCAs = pool
	}
	if d.cfg.sni != "" {
		t.TLSClientConfig.ServerName = d.cfg.sni
	}
	old := d.client
	d.client = &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	d.caPEM = ca
	if old != nil {
		old.CloseIdleConnections()
	}
	return nil
}

// current returns the client to send with, after reading the CA file again.
func (d *proxyDoer) current() (*http.Client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cfg.caFile == "" {
		return d.client, nil
	}
	ca, err := d.readCA()
	if err != nil {
		return nil, err
	}
	if len(ca) == 0 || bytes.Equal(ca, d.caPEM) {
		return d.client, nil // an empty file (mid-update) keeps the CA in use
	}
	if err := d.use(ca); err != nil {
		return nil, err
	}
	d.logger.Info(credNameWorkloadIdentity+": the AKS token proxy's CA file changed; using the new CA", slog.String("file", d.cfg.caFile))
	return d.client, nil
}

// Do sends req to the proxy: "<proxy URL><path>?<query>" of req's URL.
func (d *proxyDoer) Do(req *http.Request) (*http.Response, error) {
	c, err := d.current()
	if err != nil {
		return nil, err
	}
	u := *d.cfg.url
	u.Path = d.cfg.url.Path + req.URL.Path
	u.RawPath = ""
	u.RawQuery = req.URL.RawQuery
	out := req.Clone(req.Context())
	out.URL = &u
	out.Host = ""
	return c.Do(out)
}

var _ TokenCredential = (*WorkloadIdentityCredential)(nil)
