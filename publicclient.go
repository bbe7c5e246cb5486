package azcred

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/httpx"
	"github.com/azcred/azcred/internal/oauth"
)

// developerSignOnClientID is the Azure development sign-on application,
// the default client of the interactive credentials.
const developerSignOnClientID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"

// interactFunc signs a person in for r (tenant resolved) through the token
// endpoint endpoint.
type interactFunc func(ctx context.Context, endpoint string, r cache.Request) (*oauth.UserToken, error)

// publicClient is what the interactive credentials share: the account,
// its refresh tokens (in memory and in the persistent cache), silent
// refreshes through the cache engine, and the serialised sign-ins.
//
// Sign-ins run in the caller's goroutine, outside the engine's shared
// fetch, so that the caller's context ends them and nothing waits for a
// person in the background. The engine's fetch only redeems refresh tokens;
// after a sign-in the token is handed to the next fetch of its key.
type publicClient struct {
	name        string
	clientID    string
	host        string
	tenants     tenantPolicy
	cloud       Cloud
	oauth       *oauth.Client
	engine      *cache.Engine
	logger      *slog.Logger
	clock       clock.Clock
	disableAuto bool
	store       cache.Store
	interact    interactFunc

	signIn chan struct{} // one sign-in at a time

	mu      sync.Mutex
	record  AuthenticationRecord
	rts     map[bool]string // the record's refresh token, by CAE
	handoff map[string]cache.Token
}

// publicConfig is what a public credential's constructor hands
// newPublicClient.
type publicConfig struct {
	name        string
	tenantID    string
	clientID    string
	options     *ClientOptions
	allowed     []string
	record      AuthenticationRecord
	disableAuto bool
	store       cache.Store
	// signInTimeout is how long a person may take; the engine's fetches are
	// bounded by at least this.
	signInTimeout time.Duration
}

func newPublicClient(cfg publicConfig) (*publicClient, error) {
	co := cfg.options
	getenv := co.getenvOrOS()
	if cfg.clientID == "" {
		cfg.clientID = developerSignOnClientID
	}
	tenant := cfg.tenantID
	if tenant == "" {
		tenant = tenantOrganizations
	}
	if err := validateTenantID(cfg.name, tenant); err != nil {
		return nil, err
	}
	if err := validateClientID(cfg.name, cfg.clientID); err != nil {
		return nil, err
	}
	if !cfg.record.isZero() {
		if cfg.record.Version != authenticationRecordVersion {
			return nil, fmt.Errorf("%s: the AuthenticationRecord has version %q; only %q is supported: sign in again with Authenticate", cfg.name, cfg.record.Version, authenticationRecordVersion)
		}
		if !strings.EqualFold(cfg.record.ClientID, cfg.clientID) {
			return nil, fmt.Errorf("%s: the AuthenticationRecord is for client %q but the credential's client is %q: use the same ClientID, or sign in again with Authenticate", cfg.name, cfg.record.ClientID, cfg.clientID)
		}
		if cfg.record.HomeAccountID == "" {
			return nil, fmt.Errorf("%s: the AuthenticationRecord has no homeAccountId: sign in again with Authenticate", cfg.name)
		}
	}
	host, err := co.authorityHost(getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.name, err)
	}
	if _, err := oauth.TokenEndpoint(host, tenant, ""); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.name, err)
	}
	if strings.EqualFold(tenant, tenantADFS) {
		return nil, fmt.Errorf("%s: AD FS is not supported by the interactive credentials; use a Microsoft Entra ID tenant", cfg.name)
	}
	var retry RetryOptions
	if co != nil {
		retry = co.Retry
	}
	clk := clock.OrReal(co.clockOrNil())
	p := &publicClient{
		name:        cfg.name,
		clientID:    cfg.clientID,
		host:        host,
		tenants:     newTenantPolicy(cfg.name, tenant, cfg.allowed, getenv),
		cloud:       co.cloud(),
		logger:      co.logger(),
		clock:       clk,
		disableAuto: cfg.disableAuto,
		store:       cfg.store,
		signIn:      make(chan struct{}, 1),
		record:      cfg.record,
		rts:         map[bool]string{},
		handoff:     map[string]cache.Token{},
	}
	p.oauth = oauth.NewClient(oauth.Options{
		HTTP: httpx.New(httpx.Options{
			Transport: co.transport(),
			Retry:     retry.policy(),
			Defaults:  httpx.EntraDefaults,
			Logger:    p.logger,
			Clock:     clk,
		}),
		Clock: clk,
	})
	p.engine = cache.New(p.fetch, &cache.Options{Clock: clk, RefreshTimeout: cfg.signInTimeout})
	return p, nil
}

// errInteraction says that no silent way to a token is left: a person must
// sign in. It never leaves the credential.
type errInteraction struct{ cause error }

func (e *errInteraction) Error() string {
	if e.cause == nil {
		return "a user must sign in"
	}
	return "a user must sign in: " + e.cause.Error()
}

func (e *errInteraction) Unwrap() error { return e.cause }

// request resolves the tenant of opts with the tenant rule.
func (p *publicClient) request(opts TokenRequestOptions) (cache.Request, error) {
	tenant := p.tenants.configured
	if opts.TenantID != "" {
		var err error
		if tenant, err = p.tenants.resolve(opts.TenantID); err != nil {
			return cache.Request{}, err
		}
	}
	return cache.Request{Scopes: opts.Scopes, TenantID: tenant, Claims: opts.Claims, EnableCAE: opts.EnableCAE}, nil
}

// getToken returns a cached or silently refreshed token, and signs the
// user in when neither exists, unless automatic sign-in is disabled.
func (p *publicClient) getToken(ctx context.Context, opts TokenRequestOptions) (AccessToken, error) {
	r, err := p.request(opts)
	if err != nil {
		return AccessToken{}, err
	}
	t, err := p.engine.Get(ctx, r)
	var need *errInteraction
	if errors.As(err, &need) {
		if p.disableAuto {
			return AccessToken{}, NewAuthenticationRequiredError(p.name, opts, "")
		}
		t, err = p.signInAndGet(ctx, r, true)
	}
	if err != nil {
		return AccessToken{}, err
	}
	return AccessToken{Token: t.Value, ExpiresOn: t.ExpiresOn, RefreshOn: t.RefreshOn}, nil
}

// authenticate signs a person in for opts (default scope: the cloud's
// resource manager) and returns the account's record.
func (p *publicClient) authenticate(ctx context.Context, opts *TokenRequestOptions) (AuthenticationRecord, error) {
	var o TokenRequestOptions
	if opts != nil {
		o = *opts
	}
	if len(o.Scopes) == 0 {
		aud := p.cloud.ResourceManagerAudience
		if aud == "" {
			return AuthenticationRecord{}, fmt.Errorf("%s: Authenticate needs a scope in this cloud, whose ResourceManagerAudience is not set: pass TokenRequestOptions with Scopes, or set Cloud.ResourceManagerAudience", p.name)
		}
		o.Scopes = []string{strings.TrimRight(aud, "/") + "/.default"}
	}
	if err := validateScopes(p.name, o.Scopes); err != nil {
		return AuthenticationRecord{}, err
	}
	r, err := p.request(o)
	if err != nil {
		return AuthenticationRecord{}, err
	}
	if _, err := p.signInAndGet(ctx, r, false); err != nil {
		return AuthenticationRecord{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.logger.LogAttrs(ctx, slog.LevelInfo, p.name+".Authenticate signed a user in",
		slog.String("scopes", strings.Join(o.Scopes, " ")), slog.String("tenant", r.TenantID), slog.String("username", p.record.Username))
	return p.record, nil
}

// signInAndGet runs one sign-in at a time. With silentFirst it first tries
// again silently, since another caller's sign-in may have just finished.
func (p *publicClient) signInAndGet(ctx context.Context, r cache.Request, silentFirst bool) (cache.Token, error) {
	if err := validateScopes(p.name, r.Scopes); err != nil {
		return cache.Token{}, err
	}
	select {
	case p.signIn <- struct{}{}:
	case <-ctx.Done():
		return cache.Token{}, NewAuthenticationFailedError(p.name, "gave up waiting for another sign-in to finish", ctx.Err())
	}
	defer func() { <-p.signIn }()
	if silentFirst {
		t, err := p.engine.Get(ctx, r)
		var need *errInteraction
		if !errors.As(err, &need) {
			return t, err
		}
	}
	endpoint, err := oauth.TokenEndpoint(p.host, r.TenantID, "")
	if err != nil {
		return cache.Token{}, NewAuthenticationFailedError(p.name, "cannot build the token endpoint", err)
	}
	start := p.clock.Now()
	ut, err := p.interact(ctx, endpoint, r)
	if err != nil {
		p.logger.LogAttrs(ctx, slog.LevelWarn, p.name+": sign-in failed", slog.String("tenant", r.TenantID), slog.String("error", err.Error()))
		return cache.Token{}, p.wrapError(err)
	}
	if err := p.remember(ctx, ut, r.EnableCAE); err != nil {
		return cache.Token{}, NewAuthenticationFailedError(p.name, "the sign-in succeeded but its answer names no account", err)
	}
	p.logger.LogAttrs(ctx, slog.LevelInfo, p.name+" signed a user in",
		slog.String("scopes", strings.Join(r.Scopes, " ")), slog.String("tenant", r.TenantID),
		slog.Time("expiresOn", ut.ExpiresOn), slog.Duration("took", p.clock.Now().Sub(start)))
	tok := cache.Token{Value: ut.AccessToken, ExpiresOn: ut.ExpiresOn, RefreshOn: ut.RefreshOn}
	hk := handoffKey(r)
	p.mu.Lock()
	p.handoff[hk] = tok
	p.mu.Unlock()
	// The engine's next fetch of this key takes the handed-off token, so
	// the cache holds it; an entry still fresh in the engine stays.
	t, err := p.engine.Get(ctx, r)
	p.mu.Lock()
	delete(p.handoff, hk)
	p.mu.Unlock()
	if err != nil {
		return tok, nil
	}
	if silentFirst {
		return t, nil
	}
	return tok, nil
}

func handoffKey(r cache.Request) string {
	return strings.Join(r.Scopes, " ") + "\x00" + r.TenantID + "\x00" + strconv.FormatBool(r.EnableCAE) + "\x00" + r.Claims
}

// fetch is the engine's FetchFunc: a token handed off by a sign-in, or a
// refresh token redeemed. Without either it answers *errInteraction.
func (p *publicClient) fetch(ctx context.Context, r cache.Request) (cache.Token, error) {
	if err := validateScopes(p.name, r.Scopes); err != nil {
		return cache.Token{}, err
	}
	hk := handoffKey(r)
	p.mu.Lock()
	t, ok := p.handoff[hk]
	delete(p.handoff, hk)
	p.mu.Unlock()
	if ok {
		return t, nil
	}
	rt := p.refreshToken(ctx, r.EnableCAE)
	if rt == "" {
		return cache.Token{}, &errInteraction{}
	}
	endpoint, err := oauth.TokenEndpoint(p.host, p.refreshTenant(r.TenantID), "")
	if err != nil {
		return cache.Token{}, NewAuthenticationFailedError(p.name, "cannot build the token endpoint", err)
	}
	ut, err := p.oauth.Refresh(ctx, oauth.RefreshParams{
		Params:       oauth.Params{Endpoint: endpoint, ClientID: p.clientID, Scopes: r.Scopes, Claims: r.Claims, EnableCAE: r.EnableCAE},
		RefreshToken: rt,
	})
	if err != nil {
		switch oauth.ErrorCode(err) {
		case oauth.CodeInvalidGrant, oauth.CodeInteractionRequired:
			p.forgetRefreshToken(ctx, r.EnableCAE)
			p.logger.LogAttrs(ctx, slog.LevelInfo, p.name+": the refresh token was refused; the user must sign in again", slog.String("error", err.Error()))
			return cache.Token{}, &errInteraction{cause: err}
		}
		p.logger.LogAttrs(ctx, slog.LevelWarn, p.name+".GetToken failed to refresh", slog.String("tenant", r.TenantID), slog.String("error", err.Error()))
		return cache.Token{}, p.wrapError(err)
	}
	if err := p.remember(ctx, ut, r.EnableCAE); err != nil {
		p.logger.LogAttrs(ctx, slog.LevelWarn, p.name+": the refreshed token names no account", slog.String("error", err.Error()))
	}
	p.logger.LogAttrs(ctx, slog.LevelInfo, p.name+".GetToken acquired a token silently",
		slog.String("scopes", strings.Join(r.Scopes, " ")), slog.String("tenant", r.TenantID), slog.Time("expiresOn", ut.ExpiresOn))
	return cache.Token{Value: ut.AccessToken, ExpiresOn: ut.ExpiresOn, RefreshOn: ut.RefreshOn}, nil
}

// refreshTenant is where a refresh token is redeemed: the account's home
// tenant when the request names only "organizations" or "common".
func (p *publicClient) refreshTenant(tenant string) string {
	if !strings.EqualFold(tenant, tenantOrganizations) && !strings.EqualFold(tenant, tenantCommon) {
		return tenant
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.record.TenantID != "" {
		return p.record.TenantID
	}
	return tenant
}

func (p *publicClient) partition() string { return p.clientID + "@" + p.host }

// refreshToken returns the account's refresh token: from memory, else from
// the persistent cache; "" when there is none.
func (p *publicClient) refreshToken(ctx context.Context, cae bool) string {
	p.mu.Lock()
	rt, home := p.rts[cae], p.record.HomeAccountID
	p.mu.Unlock()
	if rt != "" || p.store == nil || home == "" {
		return rt
	}
	e, ok, err := p.store.Load(ctx, cache.EntryKey{Kind: cache.KindRefreshToken, Partition: p.partition(), Key: home, CAE: cae})
	if err != nil {
		p.logger.LogAttrs(ctx, slog.LevelWarn, p.name+": reading the persistent cache failed", slog.String("error", err.Error()))
		return ""
	}
	if !ok {
		return ""
	}
	p.mu.Lock()
	if p.record.HomeAccountID == home && p.rts[cae] == "" {
		p.rts[cae] = e.Value
	}
	p.mu.Unlock()
	return e.Value
}

// remember keeps the account and the refresh token of ut, in memory and in
// the persistent cache.
func (p *publicClient) remember(ctx context.Context, ut *oauth.UserToken, cae bool) error {
	rec, err := newAuthenticationRecord(ut, p.clientID)
	if err != nil {
		return err
	}
	p.mu.Lock()
	if p.record.HomeAccountID != rec.HomeAccountID {
		p.rts = map[bool]string{}
	}
	p.record = rec
	if ut.RefreshToken != "" {
		p.rts[cae] = ut.RefreshToken
	}
	p.mu.Unlock()
	if p.store == nil {
		return nil
	}
	doc, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := p.store.Save(ctx, cache.EntryKey{Kind: cache.KindAccount, Partition: p.partition(), Key: rec.HomeAccountID}, cache.Entry{Value: string(doc)}); err != nil {
		p.logger.LogAttrs(ctx, slog.LevelWarn, p.name+": writing the persistent cache failed", slog.String("error", err.Error()))
		return nil
	}
	if ut.RefreshToken != "" {
		if err := p.store.Save(ctx, cache.EntryKey{Kind: cache.KindRefreshToken, Partition: p.partition(), Key: rec.HomeAccountID, CAE: cae}, cache.Entry{Value: ut.RefreshToken}); err != nil {
			p.logger.LogAttrs(ctx, slog.LevelWarn, p.name+": writing the persistent cache failed", slog.String("error", err.Error()))
		}
	}
	return nil
}

func (p *publicClient) forgetRefreshToken(ctx context.Context, cae bool) {
	p.mu.Lock()
	delete(p.rts, cae)
	home := p.record.HomeAccountID
	p.mu.Unlock()
	if p.store != nil && home != "" {
		if err := p.store.Delete(ctx, cache.EntryKey{Kind: cache.KindRefreshToken, Partition: p.partition(), Key: home, CAE: cae}); err != nil {
			p.logger.LogAttrs(ctx, slog.LevelWarn, p.name+": writing the persistent cache failed", slog.String("error", err.Error()))
		}
	}
}

// wrapError turns a sign-in's or refresh's failure into an
// [*AuthenticationFailedError] with the authority's details.
func (p *publicClient) wrapError(err error) error {
	var af *AuthenticationFailedError
	if errors.As(err, &af) || isUnavailable(err) {
		// Already classified (an unavailable cause, from an assertion
		// callback say, stays unavailable: the classes never overlap).
		return err
	}
	e := NewAuthenticationFailedError(p.name, "", err)
	var oe *oauth.Error
	switch {
	case errors.As(err, &oe):
		e.Message = "authentication failed"
		e.StatusCode, e.ErrorCode, e.CorrelationID, e.Response = oe.StatusCode, oe.AADSTS, oe.CorrelationID, oe.Body
	case errors.Is(err, context.DeadlineExceeded):
		e.Message = "the sign-in did not finish in time"
	case errors.Is(err, context.Canceled):
		e.Message = "the sign-in was cancelled"
	default:
		e.Message = fmt.Sprintf("could not sign in with %s", p.host)
	}
	return e
}

func (p *publicClient) describe() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return []string{"tenantID", p.tenants.configured, "clientID", p.clientID, "username", p.record.Username}
}
