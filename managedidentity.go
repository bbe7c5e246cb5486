package azcred

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/httpx"
	"github.com/azcred/azcred/internal/lru"
	"github.com/azcred/azcred/internal/msi"
)

const credNameManagedIdentity = "ManagedIdentityCredential"

// ManagedIDKind names a user-assigned managed identity: [ClientID],
// [ObjectID] or [ResourceID]. No other type implements it.
type ManagedIDKind interface {
	fmt.Stringer
	msiID() msi.ID
}

// ClientID names a user-assigned managed identity by its client
// (application) ID.
type ClientID string

// String returns the ID.
func (c ClientID) String() string { return string(c) }

func (c ClientID) msiID() msi.ID { return msi.ID{Kind: msi.ClientID, Value: string(c)} }

// ObjectID names a user-assigned managed identity by the object ID of its
// service principal (also called its principal ID).
type ObjectID string

// String returns the ID.
func (o ObjectID) String() string { return string(o) }

func (o ObjectID) msiID() msi.ID { return msi.ID{Kind: msi.ObjectID, Value: string(o)} }

// ResourceID names a user-assigned managed identity by its Azure resource
// ID, "/subscriptions/.../providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>".
type ResourceID string

// String returns the ID.
func (r ResourceID) String() string { return string(r) }

func (r ResourceID) msiID() msi.ID { return msi.ID{Kind: msi.ResourceID, Value: string(r)} }

// ManagedIdentityCredentialOptions contains optional parameters for
// ManagedIdentityCredential.
type ManagedIdentityCredentialOptions struct {
	ClientOptions

	// ID selects a user-assigned identity by [ClientID], [ObjectID] or
	// [ResourceID]. Default: nil, the system-assigned identity. Service
	// Fabric and Cloud Shell support only the default; Azure ML only
	// ClientID.
	ID ManagedIDKind

	// IMDSEndpoint is the base URL of the Azure Instance Metadata Service,
	// such as "http://169.254.169.254"; it matters only where no other
	// host's environment variables are set. Default: the
	// AZURE_POD_IDENTITY_AUTHORITY_HOST environment variable when set, else
	// "http://169.254.169.254".
	IMDSEndpoint string

	// Cache keeps the tokens of a user-assigned identity in a store shared
	// by processes (such as a Redis store) as well as in memory, so that a
	// fleet running as that identity asks the endpoint about once per token
	// lifetime. It is not used for the system-assigned identity, which is a
	// different principal on every machine. The value must be comparable
	// (a pointer, as the stores of this module are). Default: nil, memory
	// only.
	Cache cache.Store

	// Seams for tests in this package, and the chain's options.
	arcKeyDir    string        // the Arc agent's token folder; "" = the platform's
	himdsPath    string        // the Arc agent's executable; "" = the platform's
	probeTimeout time.Duration // chain mode: connect and first-answer bound; 0 = 1 s
	// chainMode is set by DefaultAzureCredential when it holds other sources
	// too: on IMDS the first request is bounded by probeTimeout and a probe
	// decides whether IMDS is there, so a machine without one is passed over
	// within about a second (see internal/msi's chainFirst). Once IMDS has
	// answered, the credential's requests use the full retry policy, with
	// connections no longer bounded by probeTimeout.
	chainMode bool
	// offAzureCheck is set by DefaultAzureCredential: no IMDS probe where
	// the firmware says this is not an Azure VM (see offAzure).
	offAzureCheck bool
}

// ManagedIdentityCredential authenticates as a managed identity of the Azure
// resource the program runs on: a virtual machine or scale set (IMDS), App
// Service, Functions or Container Apps, Service Fabric, Azure Machine
// Learning, Cloud Shell, or a machine connected with Azure Arc. The host is
// detected from its environment variables when the credential is
// constructed; IMDS is the fallback.
//
// Tokens are cached process-wide per endpoint, host kind, identity and
// resource, as in azidentity: IMDS throttles, and services often build a
// credential per request, so credentials for the same identity share their
// tokens. Fetches for a shared entry use the options of the credential that
// created it. The process-wide cache holds at most 1,024 entries; past that
// the one looked up least recently is dropped (credentials holding it keep
// using it; a new credential for it fetches again). IMDS and Azure Arc
// credentials share one connection pool: azcred's when ClientOptions.Transport
// is nil, else one per caller *http.Transport (a proxy-less copy taken when
// the transport is first used), so making many credentials does not hold a
// connection each. Service Fabric credentials likewise share one transport,
// pinned to the cluster's certificate, per IDENTITY_SERVER_THUMBPRINT and
// caller *http.Transport (or azcred's own); the process keeps at most 64
// such transports, dropping the one used least recently past that
// (credentials holding it keep using it). A request's TenantID is ignored (an identity belongs to one
// tenant), as is EnableCAE. It is safe for concurrent use.
type ManagedIdentityCredential struct {
	client  *msi.Client
	clock   clock.Clock
	logger  *slog.Logger
	chain   bool
	desc    description
	engines *miEngines
	store   cache.Store // user-assigned identities only
}

// miEngines is a credential's own map of the process-wide engines it uses,
// by resource: read without a lock, copied on write.
type miEngines struct {
	mu sync.Mutex
	m  atomic.Pointer[map[string]*miEntry]
}

// miEntry is one cache entry of the process-wide registry: the engine of
// one (endpoint, source, identity, resource) and the scopes it is asked for.
type miEntry struct {
	engine *cache.Engine
	scopes []string
}

// miKey identifies a process-wide engine. The chain flag keeps a chain's
// fast-failing fetches apart from a stand-alone credential's patient ones.
type miKey struct {
	endpoint string
	source   msi.Source
	id       msi.ID
	resource string
	chain    bool
	store    cache.Store
}

// miRegistryMax bounds the process-wide registry. Past it, the entry
// looked up least recently is dropped from the registry: credentials that
// already use it keep it, and a later credential of that identity and
// resource starts a new one (one more fetch).
const miRegistryMax = 1024

var (
	miRegistryMu sync.Mutex
	miRegistry   = lru.New[miKey, *miEntry](miRegistryMax, nil)
)

// miRefreshTimeout bounds one managed-identity fetch: the IMDS retry policy
// may spend well over a minute on a 410 or 429 storm.
const miRefreshTimeout = 5 * time.Minute

// NewManagedIdentityCredential constructs a ManagedIdentityCredential. It
// detects the host from the environment and fails when the host cannot serve
// the requested identity. Pass nil to accept default options.
func NewManagedIdentityCredential(options *ManagedIdentityCredentialOptions) (*ManagedIdentityCredential, error) {
	if options == nil {
		options = &ManagedIdentityCredentialOptions{}
	}
	co := &options.ClientOptions
	var id msi.ID
	if options.ID != nil {
		id = options.ID.msiID()
	}
	retry := co.Retry
	clk := clock.OrReal(co.clockOrNil())
	logger := co.logger()
	var transport httpx.Doer
	if co.Transport != nil {
		transport = co.Transport
	}
	client, err := msi.New(msi.Config{
		Name:         credNameManagedIdentity,
		Getenv:       co.getenvOrOS(),
		ID:           id,
		IMDSBase:     options.IMDSEndpoint,
		Transport:    transport,
		Retry:        retry.policy(),
		Logger:       logger,
		Clock:        clk,
		ArcKeyDir:    options.arcKeyDir,
		HimdsPath:    options.himdsPath,
		Chain:        options.chainMode,
		ProbeTimeout: options.probeTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", credNameManagedIdentity, err)
	}
	if options.offAzureCheck {
		if err := offAzure(client, options.IMDSEndpoint != "", co.getenvOrOS()); err != nil {
			return nil, err
		}
	}
	// Inside a chain the chain names the source it uses (Info); a source
	// whose answer is not needed logs nothing above Debug.
	logger.Log(context.Background(), levelInChain(options.chainMode, slog.LevelInfo), client.Describe())
	idText := "system-assigned"
	if id.Kind != msi.None {
		idText = fmt.Sprintf("%s %s", id.Kind, id.Value)
	}
	c := &ManagedIdentityCredential{
		client: client,
		clock:  clk,
		logger: logger,
		chain:  options.chainMode,
		desc:   describe(credNameManagedIdentity, "source", client.Source().String(), "endpoint", client.Endpoint(), "identity", idText),
	}
	if err := c.useStore(options.Cache, id); err != nil {
		return nil, err
	}
	c.engines = &miEngines{}
	empty := map[string]*miEntry{}
	c.engines.m.Store(&empty)
	return c, nil
}

// GetToken returns an access token for the one scope in opts (a resource
// with or without "/.default"), from the process-wide cache when it holds
// one that is not due for refresh.
func (c *ManagedIdentityCredential) GetToken(ctx context.Context, opts TokenRequestOptions) (AccessToken, error) {
	if len(opts.Scopes) != 1 {
		return AccessToken{}, fmt.Errorf("%s: managed identity gets a token for exactly one scope, such as \"https://management.azure.com/.default\"; got %d", credNameManagedIdentity, len(opts.Scopes))
	}
	resource := strings.TrimSuffix(opts.Scopes[0], "/.default")
	ent := (*c.engines.m.Load())[resource]
	if ent == nil {
		if err := validateScopes(credNameManagedIdentity, opts.Scopes); err != nil {
			return AccessToken{}, err
		}
		if resource == "" {
			return AccessToken{}, fmt.Errorf("%s: the scope names no resource; give one such as \"https://management.azure.com/.default\"", credNameManagedIdentity)
		}
		ent = c.entry(resource)
	}
	t, err := ent.engine.Get(ctx, cache.Request{Scopes: ent.scopes, Claims: opts.Claims})
	if err != nil {
		return AccessToken{}, err
	}
	return AccessToken{Token: t.Value, ExpiresOn: t.ExpiresOn, RefreshOn: t.RefreshOn}, nil
}

// entry finds or makes the process-wide engine of resource and remembers it
// in the credential's own lock-free map.
func (c *ManagedIdentityCredential) entry(resource string) *miEntry {
	c.engines.mu.Lock()
	defer c.engines.mu.Unlock()
	old := *c.engines.m.Load()
	if e := old[resource]; e != nil {
		return e
	}
	key := miKey{endpoint: c.client.Endpoint(), source: c.client.Source(), id: c.client.ID(), resource: resource, chain: c.chain, store: c.store}
	e := miLookup(key, func() *miEntry {
		e := &miEntry{scopes: []string{resource}}
		e.engine = cache.New(c.storedFetch(resource, func(ctx context.Context, r cache.Request) (cache.Token, error) {
			return c.fetch(ctx, resource)
		}), &cache.Options{Clock: c.clock, RefreshTimeout: miRefreshTimeout})
		return e
	})
	m := make(map[string]*miEntry, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[resource] = e
	c.engines.m.Store(&m)
	return e
}

// miLookup returns the registry's entry of key, making it with create when
// there is none, and drops the entries looked up least recently past
// miRegistryMax.
func miLookup(key miKey, create func() *miEntry) *miEntry {
	miRegistryMu.Lock()
	defer miRegistryMu.Unlock()
	return miRegistry.GetOrAdd(key, create)
}

// fetch is the engine's FetchFunc: one token from the endpoint.
func (c *ManagedIdentityCredential) fetch(ctx context.Context, resource string) (cache.Token, error) {
	start := c.clock.Now()
	tok, err := c.client.GetToken(ctx, resource)
	if err != nil {
		err = c.wrapError(err)
		c.logger.LogAttrs(ctx, levelInChain(c.chain, slog.LevelWarn), credNameManagedIdentity+".GetToken failed",
			slog.String("resource", resource), slog.String("source", c.client.Source().String()), slog.String("error", err.Error()))
		return cache.Token{}, err
	}
	c.logger.LogAttrs(ctx, levelInChain(c.chain, slog.LevelInfo), credNameManagedIdentity+".GetToken acquired a token",
		slog.String("resource", resource), slog.String("source", c.client.Source().String()),
		slog.Time("expiresOn", tok.ExpiresOn), slog.Duration("took", c.clock.Now().Sub(start)))
	return cache.Token{Value: tok.AccessToken, ExpiresOn: tok.ExpiresOn, RefreshOn: tok.RefreshOn}, nil
}

// wrapError turns the endpoint's errors into the error classes.
func (c *ManagedIdentityCredential) wrapError(err error) error {
	var (
		un   *msi.UnavailableError
		resp *msi.ResponseError
	)
	switch {
	case errors.As(err, &un):
		return NewCredentialUnavailableError(credNameManagedIdentity, un.Msg, un.Err)
	case errors.As(err, &resp):
		e := NewAuthenticationFailedError(credNameManagedIdentity, resp.Msg, resp.Err)
		e.StatusCode, e.Response = resp.StatusCode, resp.Body
		return e
	}
	return NewAuthenticationFailedError(credNameManagedIdentity, fmt.Sprintf("could not get a token from the %s endpoint", c.client.Source()), err)
}

// String describes the credential: its host kind, endpoint and identity.
func (c ManagedIdentityCredential) String() string { return c.desc.String() }

// GoString is String.
func (c ManagedIdentityCredential) GoString() string { return c.desc.String() }

// LogValue implements [slog.LogValuer].
func (c ManagedIdentityCredential) LogValue() slog.Value { return c.desc.LogValue() }

var _ TokenCredential = (*ManagedIdentityCredential)(nil)
