package azcred

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/env"
	"github.com/azcred/azcred/internal/httpx"
	"github.com/azcred/azcred/internal/oauth"
)

// entraClient is what every Entra ID credential shares: the resolved
// authority, the tenant rule, the token-endpoint client and the one cache
// engine of the credential. The credential supplies its grant.
type entraClient struct {
	name     string
	host     string // "https://host[:port]"
	region   string
	tenants  tenantPolicy
	oauth    *oauth.Client
	engine   *cache.Engine
	logger   *slog.Logger
	grant    grantFunc
	clock    clock.Clock
	clientID string
	store    cache.Store // persistent access tokens; nil: memory only
}

// grantFunc sends the credential's token request to endpoint with the shared
// parameters p (endpoint, client ID, scopes, claims, CAE).
type grantFunc func(ctx context.Context, c *oauth.Client, p oauth.Params) (*oauth.Token, error)

// entraConfig is what a credential's constructor hands newEntraClient.
type entraConfig struct {
	name     string
	tenantID string
	clientID string
	options  *ClientOptions
	allowed  []string
	grant    grantFunc
	// tenantOptional lets an empty tenant mean "organizations" (public
	// clients); otherwise the tenant is required.
	tenantOptional bool
	// store keeps access tokens between processes (the credential's Cache
	// option); nil keeps them in memory only.
	store cache.Store
	// share, when set, lets credentials of the same identity, secret
	// material and options share one engine in this process (see
	// sharedengine.go); nil gives the credential its own.
	share *shareParts
}

// newEntraClient validates the configuration shared by the Entra ID
// credentials and builds their client. Errors name the credential and what
// to fix.
func newEntraClient(cfg entraConfig) (*entraClient, error) {
	co := cfg.options
	getenv := co.getenvOrOS()
	tenant := cfg.tenantID
	if tenant == "" && cfg.tenantOptional {
		tenant = tenantOrganizations
	}
	if err := validateTenantID(cfg.name, tenant); err != nil {
		return nil, err
	}
	if err := validateClientID(cfg.name, cfg.clientID); err != nil {
		return nil, err
	}
	host, err := co.authorityHost(getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.name, err)
	}
	region := oauth.ResolveRegion(getenv(env.RegionalAuthorityName), getenv)
	if _, err := oauth.TokenEndpoint(host, tenant, region); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.name, err)
	}
	var retry RetryOptions
	if co != nil {
		retry = co.Retry
	}
	clk := clock.OrReal(co.clockOrNil())
	c := &entraClient{
		name:     cfg.name,
		host:     host,
		region:   region,
		tenants:  newTenantPolicy(cfg.name, tenant, cfg.allowed, getenv),
		logger:   co.logger(),
		grant:    cfg.grant,
		clock:    clk,
		clientID: cfg.clientID,
		store:    cfg.store,
	}
	c.oauth = oauth.NewClient(oauth.Options{
		HTTP: httpx.New(httpx.Options{
			Transport: co.transport(),
			Retry:     retry.policy(),
			Defaults:  httpx.EntraDefaults,
			Logger:    c.logger,
			Clock:     clk,
		}),
		Clock: clk,
	})
	build := func() *cache.Engine {
		fetch := c.fetch
		if c.store != nil {
			stored := cache.WithStore(c.fetchSource, cache.StoreOptions{
				Store: c.store, Key: c.storedKey, Name: c.name, Clock: clk, Logger: c.logger,
			})
			fetch = func(ctx context.Context, r cache.Request) (cache.Token, error) {
				if err := validateScopes(c.name, r.Scopes); err != nil {
					return cache.Token{}, err
				}
				return stored(ctx, r)
			}
		}
		return cache.New(fetch, &cache.Options{Clock: clk})
	}
	if cfg.share != nil {
		if k, ok := newShareKey(cfg, host, region, tenant); ok {
			c.engine = sharedEngine(k, build)
		}
	}
	if c.engine == nil {
		c.engine = build()
	}
	return c, nil
}

// getToken is the GetToken of every Entra ID credential: apply the tenant
// rule and ask the cache engine. A cached token costs no lock and, for one
// scope, no allocation. Scopes are validated in fetch: the cache only ever
// holds tokens for scopes that passed, so a hit needs no second check.
func (c *entraClient) getToken(ctx context.Context, opts TokenRequestOptions) (AccessToken, error) {
	tenant := c.tenants.configured
	if opts.TenantID != "" {
		var err error
		if tenant, err = c.tenants.resolve(opts.TenantID); err != nil {
			return AccessToken{}, err
		}
	}
	t, err := c.engine.Get(ctx, cache.Request{Scopes: opts.Scopes, TenantID: tenant, Claims: opts.Claims, EnableCAE: opts.EnableCAE})
	if err != nil {
		return AccessToken{}, err
	}
	return AccessToken{Token: t.Value, ExpiresOn: t.ExpiresOn, RefreshOn: t.RefreshOn}, nil
}

// fetch is the cache engine's FetchFunc without a persistent cache: one
// token request.
func (c *entraClient) fetch(ctx context.Context, r cache.Request) (cache.Token, error) {
	if err := validateScopes(c.name, r.Scopes); err != nil {
		return cache.Token{}, err
	}
	return c.fetchSource(ctx, r)
}

// fetchSource sends one token request for r, whose scopes are valid.
func (c *entraClient) fetchSource(ctx context.Context, r cache.Request) (cache.Token, error) {
	endpoint, err := oauth.TokenEndpoint(c.host, r.TenantID, c.region)
	if err != nil {
		return cache.Token{}, NewAuthenticationFailedError(c.name, "cannot build the token endpoint", err)
	}
	start := c.clock.Now()
	tok, err := c.grant(ctx, c.oauth, oauth.Params{
		Endpoint:  endpoint,
		ClientID:  c.clientID,
		Scopes:    r.Scopes,
		Claims:    r.Claims,
		EnableCAE: r.EnableCAE,
	})
	if err != nil {
		c.logger.LogAttrs(ctx, slog.LevelWarn, c.name+".GetToken failed",
			slog.String("scopes", strings.Join(r.Scopes, " ")), slog.String("tenant", r.TenantID), slog.String("error", err.Error()))
		return cache.Token{}, c.wrapError(err)
	}
	c.logger.LogAttrs(ctx, slog.LevelInfo, c.name+".GetToken acquired a token",
		slog.String("scopes", strings.Join(r.Scopes, " ")), slog.String("tenant", r.TenantID),
		slog.String("clientID", c.clientID), slog.Time("expiresOn", tok.ExpiresOn),
		slog.Duration("took", c.clock.Now().Sub(start)))
	return cache.Token{Value: tok.AccessToken, ExpiresOn: tok.ExpiresOn, RefreshOn: tok.RefreshOn}, nil
}

// storedKey names r's access token in the persistent cache: the app at its
// authority, then the tenant and the set of scopes.
func (c *entraClient) storedKey(r cache.Request) cache.EntryKey {
	scopes := slices.Clone(r.Scopes)
	slices.Sort(scopes)
	return cache.EntryKey{
		Kind:      cache.KindAccessToken,
		Partition: c.clientID + "@" + c.host,
		Key:       r.TenantID + " " + strings.Join(slices.Compact(scopes), " "),
		CAE:       r.EnableCAE,
	}
}

// wrapError turns what the token request returned into an
// [*AuthenticationFailedError] that carries the authority's details.
func (c *entraClient) wrapError(err error) error {
	var af *AuthenticationFailedError
	if errors.As(err, &af) || isUnavailable(err) {
		// Already classified (an unavailable cause, from an assertion
		// callback say, stays unavailable: the classes never overlap).
		return err
	}
	e := NewAuthenticationFailedError(c.name, "", err)
	var oe *oauth.Error
	var tooLong *httpx.RetryAfterTooLongError
	var assertion *oauth.AssertionError
	switch {
	case errors.As(err, &assertion):
		e.Message = "no token was requested because the client assertion could not be had; check the assertion callback or the source it reads"
	case errors.As(err, &oe):
		e.Message = "authentication failed"
		e.StatusCode, e.ErrorCode, e.CorrelationID, e.Response = oe.StatusCode, oe.AADSTS, oe.CorrelationID, oe.Body
	case errors.As(err, &tooLong):
		e.Message = "Entra ID is throttling token requests"
		if tooLong.Response != nil {
			e.StatusCode = tooLong.Response.StatusCode
		}
	case errors.Is(err, context.DeadlineExceeded):
		e.Message = fmt.Sprintf("no token from %s in time", c.host)
	default:
		e.Message = fmt.Sprintf("could not get a token from %s", c.host)
	}
	return e
}

// policy converts RetryOptions to the pipeline's policy.
func (r RetryOptions) policy() httpx.Policy {
	return httpx.Policy{MaxRetries: r.MaxRetries, RetryDelay: r.RetryDelay, MaxRetryDelay: r.MaxRetryDelay, TryTimeout: r.TryTimeout}
}

// transport returns the Doer requests go through, after the transport rule
// (a caller's *http.Client copied with redirects refused). o may be nil.
func (o *ClientOptions) transport() httpx.Doer {
	if o == nil || o.Transport == nil {
		return httpx.NewDoer(nil)
	}
	return httpx.NewDoer(o.Transport)
}

func (o *ClientOptions) getenvOrOS() env.Getenv {
	if o == nil {
		return env.OrOS(nil)
	}
	return env.OrOS(o.getenv)
}

func (o *ClientOptions) clockOrNil() clock.Clock {
	if o == nil {
		return nil
	}
	return o.clock
}

// validateClientID checks an application (client) ID: required, and free of
// spaces and control characters.
func validateClientID(credential, id string) error {
	if id == "" {
		return fmt.Errorf("%s: the client ID is empty; give the application (client) ID of the app registration, a GUID", credential)
	}
	for _, r := range id {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("%s: the client ID %q contains a space or control character; give the application (client) ID of the app registration, a GUID", credential, id)
		}
	}
	return nil
}

// certificateExpiryWarning logs a warning when the signing certificate is
// outside its validity period. The credential still tries: Entra ID decides.
func certificateExpiryWarning(logger *slog.Logger, credential string, notBefore, notAfter, now time.Time) {
	switch {
	case now.After(notAfter):
		logger.Warn(credential+": the client certificate has expired; Entra ID will likely refuse it: register a new certificate on the app",
			slog.Time("notAfter", notAfter))
	case now.Before(notBefore):
		logger.Warn(credential+": the client certificate is not valid yet; Entra ID will likely refuse it: check the machine's clock",
			slog.Time("notBefore", notBefore))
	}
}
