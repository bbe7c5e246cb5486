package azcred

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/env"
	"github.com/azcred/azcred/internal/exec"
	"github.com/azcred/azcred/internal/jwtx"
	"github.com/azcred/azcred/internal/probewait"
)

const credNameChain = "ChainedTokenCredential"

// ChainedTokenCredentialOptions contains optional parameters for
// ChainedTokenCredential.
type ChainedTokenCredentialOptions struct {
	// RetrySources makes every GetToken walk the sources from the first,
	// instead of going straight to the source that worked first. Default:
	// false.
	RetrySources bool

	// Logger receives one Info record when a source first gives a token
	// (its name and the identity the token is for, never the token) and a
	// Debug record per attempt. Default: discard.
	Logger *slog.Logger
}

// ChainedTokenCredential tries its sources in order and returns the first
// token one of them gives. It moves to the next source only when a source is
// unavailable ([*CredentialUnavailableError]); any other error stops the
// walk. It remembers the source that worked and uses it directly afterwards
// (unless RetrySources); while no source has worked yet, concurrent callers
// share one walk. When no source gives a token, the error is a
// [*ChainError] listing every attempt. It is safe for concurrent use and adds
// no cache of its own: each source caches its tokens.
type ChainedTokenCredential struct {
	name    string
	sources []chainSource
	retry   bool
	probe   bool // start the speculative sources concurrently
	logger  *slog.Logger
	clock   clock.Clock

	winner atomic.Int32 // index of the source that worked, or -1

	mu   sync.Mutex
	walk *chainWalk // the walk in progress, nil when none

	probes sync.WaitGroup // speculative probes still running
}

// chainSource is one source of a chain.
type chainSource struct {
	name string
	cred TokenCredential
	// interactive sources ask a person to sign in: Diagnose never asks
	// them. (They declare no cost, so no walk starts them early either.)
	interactive bool
}

// chainWalk is one walk of the sources that several callers share.
type chainWalk struct {
	done  chan struct{}
	ctx   context.Context // the context of the caller that started it
	opts  TokenRequestOptions
	token AccessToken
	err   error
}

// NewChainedTokenCredential constructs a ChainedTokenCredential that tries
// sources in order. Pass nil to accept default options.
func NewChainedTokenCredential(sources []TokenCredential, options *ChainedTokenCredentialOptions) (*ChainedTokenCredential, error) {
	if options == nil {
		options = &ChainedTokenCredentialOptions{}
	}
	if len(sources) == 0 {
		return nil, errors.New(credNameChain + ": no sources were given; pass at least one credential")
	}
	list := make([]chainSource, len(sources))
	for i, s := range sources {
		if isNilCredential(s) {
			return nil, fmt.Errorf("%s: source %d is nil; pass only non-nil credentials", credNameChain, i+1)
		}
		list[i] = chainSource{name: sourceName(i, s), cred: s}
	}
	logger := options.Logger
	if logger == nil {
		logger = discardLogger
	}
	return newChain(credNameChain, list, options.RetrySources, false, logger, nil), nil
}

func newChain(name string, sources []chainSource, retry, probe bool, logger *slog.Logger, clk clock.Clock) *ChainedTokenCredential {
	c := &ChainedTokenCredential{name: name, sources: sources, retry: retry, probe: probe, logger: logger, clock: clock.OrReal(clk)}
	c.winner.Store(-1)
	return c
}

// isNilCredential reports whether cred is nil or a nil pointer in an
// interface (a credential whose constructor failed and was not checked).
func isNilCredential(cred TokenCredential) bool {
	if cred == nil {
		return true
	}
	v := reflect.ValueOf(cred)
	switch v.Kind() {
	case reflect.Pointer, reflect.Func, reflect.Map, reflect.Interface, reflect.Slice, reflect.Chan:
		return v.IsNil()
	}
	return false
}

// sourceName is the name a chain shows for a source: the credential type's
// name for azcred's credentials, else its position.
func sourceName(i int, cred TokenCredential) string {
	if n, ok := cred.(interface{ credentialName() string }); ok {
		return n.credentialName()
	}
	return fmt.Sprintf("source %d", i+1)
}

// GetToken returns a token from the first source that gives one.
func (c *ChainedTokenCredential) GetToken(ctx context.Context, opts TokenRequestOptions) (AccessToken, error) {
	if !c.retry {
		if i := c.winner.Load(); i >= 0 {
			return c.sources[i].cred.GetToken(ctx, opts)
		}
	}
	if c.retry {
		tok, _, err := c.walkSources(ctx, opts)
		return tok, err
	}
	for {
		c.mu.Lock()
		if i := c.winner.Load(); i >= 0 {
			c.mu.Unlock()
			return c.sources[i].cred.GetToken(ctx, opts)
		}
		w := c.walk
		if w == nil {
			w = &chainWalk{done: make(chan struct{}), ctx: ctx, opts: opts}
			c.walk = w
			c.mu.Unlock()
			w.token, _, w.err = c.walkSources(ctx, opts)
			c.mu.Lock()
			c.walk = nil
			close(w.done)
			c.mu.Unlock()
			return w.token, w.err
		}
		c.mu.Unlock()
		select {
		case <-w.done:
		case <-ctx.Done():
			return AccessToken{}, ctx.Err()
		}
		// The walk ended. A winner means: ask it with this caller's own
		// request. A walk that ended because its caller gave up says nothing
		// about the sources: walk again. Otherwise share its failure only if
		// it was for the same request.
		if c.winner.Load() >= 0 || w.ctx.Err() != nil || !sameRequest(w.opts, opts) {
			continue
		}
		return AccessToken{}, w.err
	}
}

func sameRequest(a, b TokenRequestOptions) bool {
	return slices.Equal(a.Scopes, b.Scopes) && a.TenantID == b.TenantID && a.Claims == b.Claims && a.EnableCAE == b.EnableCAE
}

// walkSources walks the sources (see walkOnce) and records the source that
// gave a token as the chain's winner.
func (c *ChainedTokenCredential) walkSources(ctx context.Context, opts TokenRequestOptions) (AccessToken, int, error) {
	w := c.walkOnce(ctx, opts, c.sources, false)
	if w.winner >= 0 && c.winner.Swap(int32(w.winner)) != int32(w.winner) {
		c.logWinner(ctx, c.sources[w.winner].name, opts, w.token)
	}
	return w.token, w.winner, w.err
}

// walkAnswer is one source's answer during a walk.
type walkAnswer struct {
	i        int
	tok      AccessToken
	err      error
	duration time.Duration
	detail   string // where the token came from, noted by the source (Diagnose only)
}

// walkResult is what a walk did.
type walkResult struct {
	token    AccessToken
	winner   int // index of the source that gave token, or -1
	err      error
	attempts []ChainAttempt // the answers the walk used, in order
	costs    []sourceCost   // what each source declared
	started  []bool
	answers  []*walkAnswer // every answer that arrived, by source; nil if none
}

// walkOnce asks sources for a token in order and returns the first token, or
// the error that decided the walk. Sources are started in order, and early
// (on goroutines) only as the speculation rule allows (see speculation.go):
// while every earlier source is unavailable or a network probe waiting on
// the network. A source started early whose answer is not needed is not
// waited for; its context is cancelled when the walk returns, and it ends
// under its own bounds (a developer tool is never killed for it: its run
// goes on under its own timeout and its token is cached). With drain set,
// the walk instead waits for every source it started, so that the result
// holds all their answers (Diagnose).
func (c *ChainedTokenCredential) walkOnce(ctx context.Context, opts TokenRequestOptions, sources []chainSource, drain bool) walkResult {
	n := len(sources)
	w := walkResult{winner: -1, costs: make([]sourceCost, n), started: make([]bool, n), answers: make([]*walkAnswer, n)}
	for i, s := range sources {
		w.costs[i] = costOf(s.cred)
	}
	run := func(ctx context.Context, i int) walkAnswer {
		var from *origin
		if drain {
			ctx, from = withOrigin(ctx)
		}
		start := c.clock.Now()
		tok, err := sources[i].cred.GetToken(ctx, opts)
		return walkAnswer{i: i, tok: tok, err: err, duration: c.clock.Now().Sub(start), detail: from.get()}
	}
	earlyCtx, cancelEarly := context.WithCancel(ctx)
	defer cancelEarly()
	answered := make(chan walkAnswer, n)
	waits := make(chan int, n)
	waiting := make([]bool, n)
	pending := 0
	if drain {
		defer func() {
			for ; pending > 0; pending-- {
				select {
				case a := <-answered:
					w.answers[a.i] = &a
				case <-ctx.Done():
					return
				}
			}
		}()
	}

	// mayStart is the speculation rule for source j.
	mayStart := func(j int) bool {
		early := false
		for i := range j {
			switch a := w.answers[i]; {
			case a != nil && isUnavailable(a.err):
			case a == nil && w.started[i] && w.costs[i] == costProbe && waiting[i]:
				early = true
			default:
				return false
			}
		}
		return !early || (c.probe && w.costs[j] != costUnknown)
	}
	start := func(j int) {
		w.started[j] = true
		if pending == 0 && (!c.probe || w.costs[j] != costProbe) {
			// The source in order, with nothing else running: ask it here.
			a := run(ctx, j)
			w.answers[j] = &a
			return
		}
		sctx := earlyCtx
		if w.costs[j] == costProbe {
			var once sync.Once
			sctx = probewait.With(earlyCtx, func() { once.Do(func() { waits <- j }) })
		}
		pending++
		c.probes.Add(1)
		go func() {
			defer c.probes.Done()
			answered <- run(sctx, j)
		}()
	}

	next := 0 // the first source whose answer the walk has not used
	for {
		for j := next; j < n; j++ {
			if w.started[j] {
				continue
			}
			if !mayStart(j) {
				break
			}
			start(j)
		}
		for next < n && w.answers[next] != nil {
			r := w.answers[next]
			s := sources[next]
			if r.err == nil {
				w.attempts = append(w.attempts, ChainAttempt{Source: s.name, Outcome: OutcomeSucceeded, Duration: r.duration, Detail: r.detail})
				c.logAttempt(ctx, w.attempts[len(w.attempts)-1])
				w.token, w.winner = r.tok, next
				return w
			}
			if ctx.Err() != nil {
				w.err = ctx.Err()
				return w
			}
			a := ChainAttempt{Source: s.name, Outcome: OutcomeFailed, Duration: r.duration, Err: r.err}
			if isUnavailable(r.err) {
				a.Outcome = OutcomeUnavailable
			}
			w.attempts = append(w.attempts, a)
			c.logAttempt(ctx, a)
			if a.Outcome == OutcomeFailed {
				w.err = &ChainError{chain: c.name, attempts: w.attempts, deciding: r.err}
				return w
			}
			next++
		}
		if next == n {
			w.err = &ChainError{chain: c.name, attempts: w.attempts,
				deciding: NewCredentialUnavailableError(c.name, "no source is available", nil)}
			return w
		}
		if pending == 0 {
			continue // the next source in order was asked here; use its answer
		}
		select {
		case a := <-answered:
			pending--
			w.answers[a.i] = &a
		case i := <-waits:
			waiting[i] = true
		case <-ctx.Done():
			w.err = ctx.Err()
			return w
		}
	}
}

func (c *ChainedTokenCredential) logAttempt(ctx context.Context, a ChainAttempt) {
	attrs := []slog.Attr{slog.String("source", a.Source), slog.String("outcome", a.Outcome.String()), slog.Duration("duration", a.Duration)}
	if a.Err != nil {
		attrs = append(attrs, slog.String("error", a.Err.Error()))
	}
	c.logger.LogAttrs(ctx, slog.LevelDebug, c.name+" attempt", attrs...)
}

// logWinner records which source gave the token and the identity the token
// is for, from its claims; never the token.
func (c *ChainedTokenCredential) logWinner(ctx context.Context, source string, opts TokenRequestOptions, tok AccessToken) {
	if !c.logger.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{slog.String("source", source), slog.String("scopes", strings.Join(opts.Scopes, " "))}
	for _, kv := range tokenIdentity(tok.Token) {
		attrs = append(attrs, slog.String(kv.key, kv.value))
	}
	c.logger.LogAttrs(ctx, slog.LevelInfo, c.name+" authenticated with "+source, attrs...)
}

// tokenIdentity returns the identity claims of a JWT access token (tenant,
// object ID, app ID, user name) without verifying it; nothing for a token
// that is not a JWT.
func tokenIdentity(token string) []field {
	var claims map[string]any
	if jwtx.DecodeClaims(token, &claims) != nil {
		return nil
	}
	var out []field
	for _, name := range []string{"tid", "oid", "appid", "azp", "upn", "preferred_username"} {
		if s, ok := claims[name].(string); ok && s != "" {
			out = append(out, field{name, s})
		}
	}
	return out
}

// Resolved returns the name of the source the chain uses, once one has given
// a token, and whether one has.
func (c *ChainedTokenCredential) Resolved() (string, bool) {
	if i := c.winner.Load(); i >= 0 {
		return c.sources[i].name, true
	}
	return "", false
}

// Sources returns the names of the chain's sources, in order.
func (c *ChainedTokenCredential) Sources() []string {
	names := make([]string, len(c.sources))
	for i, s := range c.sources {
		names[i] = s.name
	}
	return names
}

// waitProbes waits until every speculative probe has returned (tests use it
// before goleak checks).
func (c *ChainedTokenCredential) waitProbes() { c.probes.Wait() }

func (c *ChainedTokenCredential) credentialName() string { return c.name }

// Outcome is how one source of a chain answered.
type Outcome int

// The outcomes of a chain attempt.
const (
	OutcomeUnavailable Outcome = iota // the source is not set up here
	OutcomeFailed                     // the source is set up but failed; the chain stopped
	OutcomeSucceeded                  // the source gave a token
)

// String returns "unavailable", "failed" or "succeeded".
func (o Outcome) String() string {
	switch o {
	case OutcomeUnavailable:
		return "unavailable"
	case OutcomeFailed:
		return "failed"
	case OutcomeSucceeded:
		return "succeeded"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// ChainAttempt is one source's answer during a chain's walk.
type ChainAttempt struct {
	// Source names the source, such as "EnvironmentCredential".
	Source string
	// Outcome says how it answered.
	Outcome Outcome
	// Duration is how long it took.
	Duration time.Duration
	// Err is its error; nil when it succeeded.
	Err error
	// Identity holds the claims that name the identity a successful token
	// is for (tid, oid, appid, azp, upn, preferred_username), when the token
	// is a JWT. Only [DefaultAzureCredential.Diagnose] fills it.
	Identity map[string]string
	// Walk says what GetToken's walk did with the source. Every attempt of
	// a [ChainError] is WalkAsked; [DefaultAzureCredential.Diagnose] also
	// reports sources started early and sources not started.
	Walk WalkPart
	// NotStartedReason says why the walk did not start the source, such as
	// "EnvironmentCredential is configured and answered", when Walk is
	// WalkNotStarted.
	NotStartedReason string
	// Detail says where a successful token came from when that is worth
	// telling, such as "token from the persistent cache (az sign-in
	// unchanged since ...)". Only [DefaultAzureCredential.Diagnose] fills it.
	Detail string
}

// WalkPart is what a chain's walk did with one source.
type WalkPart int

// The parts a source can have in a walk.
const (
	WalkAsked        WalkPart = iota // started, and its answer was used
	WalkStartedEarly                 // started while an earlier source waited on the network; its answer was not needed
	WalkNotStarted                   // not started: an earlier source decided the walk
)

// String returns "asked", "started early, not needed" or "not started".
func (p WalkPart) String() string {
	switch p {
	case WalkAsked:
		return "asked"
	case WalkStartedEarly:
		return "started early, not needed"
	case WalkNotStarted:
		return "not started"
	}
	return fmt.Sprintf("WalkPart(%d)", int(p))
}

// ChainError is the error of a chain that got no token. Its message lists
// every attempt. It unwraps to the error that decided the outcome only: the
// failing source's error when a source failed, or a
// [*CredentialUnavailableError] when every source was unavailable — so
// errors.As reports "unavailable" only in that case.
type ChainError struct {
	chain    string
	attempts []ChainAttempt
	deciding error
}

// Attempts returns every attempt of the walk, in order.
func (e *ChainError) Attempts() []ChainAttempt {
	out := make([]ChainAttempt, len(e.attempts))
	copy(out, e.attempts)
	return out
}

// Unwrap returns the deciding error.
func (e *ChainError) Unwrap() error { return e.deciding }

// Error lists the attempts as one indented block, each with its outcome,
// duration and message.
func (e *ChainError) Error() string {
	var b strings.Builder
	b.WriteString(e.chain)
	if n := len(e.attempts); n > 0 && e.attempts[n-1].Outcome == OutcomeFailed {
		a := e.attempts[n-1]
		// The first line names the source and carries the first line of
		// its error, which says what is wrong (for a broken
		// configuration, the variable) and what to do.
		fmt.Fprintf(&b, ": %s failed, so the chain stopped", a.Source)
		if a.Err != nil {
			fmt.Fprintf(&b, ": %s", firstLine(strings.TrimPrefix(a.Err.Error(), a.Source+": ")))
		}
		b.WriteString("\nAttempts:")
	} else {
		b.WriteString(": no source is available. Attempts:")
	}
	width := 0
	for _, a := range e.attempts {
		width = max(width, len(a.Source))
	}
	for _, a := range e.attempts {
		fmt.Fprintf(&b, "\n  %-*s  %-11s  %8s  ", width, a.Source, a.Outcome, a.Duration.Round(time.Millisecond))
		if a.Err != nil {
			msg := strings.TrimPrefix(a.Err.Error(), a.Source+": ")
			b.WriteString(strings.ReplaceAll(msg, "\n", "\n    "))
		}
	}
	return b.String()
}

var _ TokenCredential = (*ChainedTokenCredential)(nil)

// DefaultAzureCredential.

const credNameDefault = "DefaultAzureCredential"

// DefaultAzureCredentialOptions contains optional parameters for
// DefaultAzureCredential.
type DefaultAzureCredentialOptions struct {
	// ClientOptions apply to the sources that talk HTTP: environment,
	// workload identity, managed identity and interactive sign-in.
	ClientOptions

	// AdditionallyAllowedTenants lists tenants, besides each source's own,
	// that a request's TenantID may name; "*" allows any. Default: the
	// ';'-separated AZURE_ADDITIONALLY_ALLOWED_TENANTS environment variable.
	AdditionallyAllowedTenants []string

	// TenantID is the tenant of workload identity and of the developer
	// tools. Default: workload identity's AZURE_TENANT_ID; the tools' own
	// current tenant.
	TenantID string

	// ManagedIdentityID selects a user-assigned managed identity. It cannot
	// be set with ManagedIdentityClientID. Default: see
	// ManagedIdentityClientID.
	ManagedIdentityID ManagedIDKind

	// ManagedIdentityClientID selects a user-assigned managed identity by
	// client ID. Default: when neither it nor ManagedIdentityID is set, the
	// AZURE_CLIENT_ID environment variable when set (as azidentity and
	// azure-identity do; on AKS this decides which identity is used), else
	// the system-assigned identity.
	ManagedIdentityClientID string

	// WorkloadIdentityClientID is the client ID workload identity uses.
	// Default: the AZURE_CLIENT_ID environment variable.
	WorkloadIdentityClientID string

	// ExcludeEnvironmentCredential leaves EnvironmentCredential out of the
	// chain. Default: false (included). Each Exclude option below works the
	// same way for its source.
	ExcludeEnvironmentCredential bool
	// ExcludeWorkloadIdentityCredential leaves WorkloadIdentityCredential out.
	ExcludeWorkloadIdentityCredential bool
	// ExcludeManagedIdentityCredential leaves ManagedIdentityCredential out.
	ExcludeManagedIdentityCredential bool
	// ExcludeAzureCLICredential leaves AzureCLICredential out.
	ExcludeAzureCLICredential bool
	// ExcludeAzurePowerShellCredential leaves AzurePowerShellCredential out.
	ExcludeAzurePowerShellCredential bool
	// ExcludeAzureDeveloperCLICredential leaves AzureDeveloperCLICredential out.
	ExcludeAzureDeveloperCLICredential bool

	// EnableInteractiveBrowserCredential adds interactive browser sign-in as
	// the last source. Default: false.
	EnableInteractiveBrowserCredential bool

	// RequireAzureTokenCredentials makes the constructor fail unless the
	// AZURE_TOKEN_CREDENTIALS environment variable selects the sources, so
	// that a deployment never falls back to an unintended identity.
	// Default: false.
	RequireAzureTokenCredentials bool

	// DeveloperToolOrder is the order in which the chain tries the
	// developer tools, by credential name: "AzureCLICredential",
	// "AzurePowerShellCredential", "AzureDeveloperCLICredential". Tools it
	// does not name follow those it names, in the default order. azidentity
	// (Go) tries the Azure Developer CLI before Azure PowerShell; list them
	// so to get its order. Default: Azure CLI, Azure PowerShell, Azure
	// Developer CLI, as azure-identity (Python) does.
	DeveloperToolOrder []string

	// IMDSProbeTimeout bounds how long managed identity waits for the
	// Instance Metadata Service before deciding it is absent (only while
	// other sources are in the chain). When IMDS has not answered within a
	// fifth of it (two fifths when something accepted the connection and
	// the probe is not answered either), the chain may start the developer
	// tools meanwhile. A connection made late gets one more timeout for
	// its probe. Default: 1 s.
	IMDSProbeTimeout time.Duration

	// AlwaysProbeIMDS makes managed identity probe IMDS on every machine.
	// By default, while other sources are in the chain, a machine whose
	// firmware names a manufacturer other than Microsoft (a laptop, another
	// cloud's VM) or that runs macOS is not an Azure VM, and managed
	// identity is unavailable there without a request; a host that its
	// environment selects, or an IMDS endpoint set with
	// AZURE_POD_IDENTITY_AUTHORITY_HOST, always probes. Default: false, or
	// true when AZCRED_ALWAYS_PROBE_IMDS is "1" or "true".
	AlwaysProbeIMDS bool

	// ToolTimeout bounds one run of the Azure CLI, Azure PowerShell or the
	// Azure Developer CLI. Default: 10 s.
	ToolTimeout time.Duration

	// DisableConcurrentProbing asks the sources strictly one after another.
	// By default the chain starts a later source before the earlier ones
	// have answered, but only while every earlier source is unavailable or
	// a network probe (IMDS) that is waiting on the network, and runs the
	// developer tools one at a time, in order; so on a laptop the first
	// token costs about max(IMDS probe, first signed-in tool) instead of
	// the sum, and a configured server starts nothing it does not use. The
	// result is the same either way: the first source in order that gives a
	// token. A developer tool that was started is never killed for being
	// unneeded; it finishes under its own timeout. Default: false (start
	// early as described).
	DisableConcurrentProbing bool

	// DisableInstanceDiscovery is accepted for compatibility with azidentity.
	// azcred never sends discovery requests, so it has no effect. Default:
	// false.
	DisableInstanceDiscovery bool

	// toolRunner runs the developer tools (tests).
	toolRunner exec.Runner
}

// DefaultAzureCredential is a chain of the sources a Go program is most
// likely to find its identity in, tried in this order: environment variables
// ([EnvironmentCredential]), workload identity on Kubernetes, managed
// identity on Azure, then a developer's Azure CLI, Azure PowerShell and Azure
// Developer CLI sign-in, and interactive browser sign-in when enabled. It
// uses the first source that gives a token, and keeps using it.
//
// The AZURE_TOKEN_CREDENTIALS environment variable narrows the chain: "prod"
// (environment, workload identity, managed identity), "dev" (the three
// developer tools), or one credential's type name, such as
// "ManagedIdentityCredential" (case-insensitive).
//
// A source is started only when it can change the answer: each source
// declares what deciding it costs (decided by its configuration, a network
// probe, a process, or absent), and a later source is started before the
// earlier ones have answered only while every earlier one is unavailable or
// an IMDS probe waiting on the network; the developer tools run one at a
// time, in order. When the environment selects a source whose
// configuration cannot work (a missing certificate file, a wrong
// certificate password, a variable it needs left unset, a malformed value)
// GetToken fails with that error, which names the source and the variable
// on its first line, and starts nothing after it: moving on would
// authenticate as another identity. Sources whose answer was not needed log
// nothing above Debug.
//
// Its errors list every attempt ([ChainError]); [DefaultAzureCredential.Resolved]
// tells which source is in use, and an Info log record names it and the
// identity it authenticated as. It is safe for concurrent use.
type DefaultAzureCredential struct {
	chain *ChainedTokenCredential
}

// defaultSource is one row of the default chain's table.
type defaultSource struct {
	name        string
	group       string // "prod" or "dev"; "" for neither
	interactive bool
	excluded    func(o *DefaultAzureCredentialOptions) bool
	build       func(o *DefaultAzureCredentialOptions, b defaultBuild) (TokenCredential, error)
}

// defaultBuild is what every row's constructor may need besides the options.
type defaultBuild struct {
	getenv env.Getenv
	alone  bool // the only source: no chain mode
}

var defaultSources = []defaultSource{
	{
		name: credNameEnvironment, group: "prod",
		excluded: func(o *DefaultAzureCredentialOptions) bool { return o.ExcludeEnvironmentCredential },
		build: func(o *DefaultAzureCredentialOptions, _ defaultBuild) (TokenCredential, error) {
			return NewEnvironmentCredential(&EnvironmentCredentialOptions{ClientOptions: o.ClientOptions, AdditionallyAllowedTenants: o.AdditionallyAllowedTenants})
		},
	},
	{
		name: credNameWorkloadIdentity, group: "prod",
		excluded: func(o *DefaultAzureCredentialOptions) bool { return o.ExcludeWorkloadIdentityCredential },
		build: func(o *DefaultAzureCredentialOptions, _ defaultBuild) (TokenCredential, error) {
			return NewWorkloadIdentityCredential(&WorkloadIdentityCredentialOptions{
				ClientOptions: o.ClientOptions, ClientID: o.WorkloadIdentityClientID, TenantID: o.TenantID,
				AdditionallyAllowedTenants: o.AdditionallyAllowedTenants,
			})
		},
	},
	{
		name: credNameManagedIdentity, group: "prod",
		excluded: func(o *DefaultAzureCredentialOptions) bool { return o.ExcludeManagedIdentityCredential },
		build: func(o *DefaultAzureCredentialOptions, b defaultBuild) (TokenCredential, error) {
			id := o.ManagedIdentityID
			if id == nil && o.ManagedIdentityClientID != "" {
				id = ClientID(o.ManagedIdentityClientID)
			}
			if id == nil {
				if v := strings.TrimSpace(b.getenv(env.ClientID)); v != "" {
					id = ClientID(v)
				}
			}
			mo := &ManagedIdentityCredentialOptions{ClientOptions: o.ClientOptions, ID: id, probeTimeout: o.IMDSProbeTimeout, chainMode: !b.alone}
			mo.offAzureCheck = !b.alone && !o.AlwaysProbeIMDS
			return NewManagedIdentityCredential(mo)
		},
	},
	{
		name: credNameAzureCLI, group: "dev",
		excluded: func(o *DefaultAzureCredentialOptions) bool { return o.ExcludeAzureCLICredential },
		build: func(o *DefaultAzureCredentialOptions, b defaultBuild) (TokenCredential, error) {
			co := &AzureCLICredentialOptions{AdditionallyAllowedTenants: o.AdditionallyAllowedTenants, TenantID: o.TenantID, Timeout: o.ToolTimeout, Logger: o.Logger}
			co.devToolSeams = b.toolSeams(o)
			return NewAzureCLICredential(co)
		},
	},
	{
		name: credNameAzurePowerShell, group: "dev",
		excluded: func(o *DefaultAzureCredentialOptions) bool { return o.ExcludeAzurePowerShellCredential },
		build: func(o *DefaultAzureCredentialOptions, b defaultBuild) (TokenCredential, error) {
			co := &AzurePowerShellCredentialOptions{AdditionallyAllowedTenants: o.AdditionallyAllowedTenants, TenantID: o.TenantID, Timeout: o.ToolTimeout, Logger: o.Logger}
			co.devToolSeams = b.toolSeams(o)
			return NewAzurePowerShellCredential(co)
		},
	},
	{
		name: credNameAzureDeveloperCLI, group: "dev",
		excluded: func(o *DefaultAzureCredentialOptions) bool { return o.ExcludeAzureDeveloperCLICredential },
		build: func(o *DefaultAzureCredentialOptions, b defaultBuild) (TokenCredential, error) {
			co := &AzureDeveloperCLICredentialOptions{AdditionallyAllowedTenants: o.AdditionallyAllowedTenants, TenantID: o.TenantID, Timeout: o.ToolTimeout, Logger: o.Logger}
			co.devToolSeams = b.toolSeams(o)
			return NewAzureDeveloperCLICredential(co)
		},
	},
	{
		name: credNameInteractiveBrowser, interactive: true,
		excluded: func(o *DefaultAzureCredentialOptions) bool { return !o.EnableInteractiveBrowserCredential },
		build: func(o *DefaultAzureCredentialOptions, _ defaultBuild) (TokenCredential, error) {
			return NewInteractiveBrowserCredential(&InteractiveBrowserCredentialOptions{ClientOptions: o.ClientOptions, AdditionallyAllowedTenants: o.AdditionallyAllowedTenants, TenantID: o.TenantID})
		},
	},
}

// toolSeams are the developer tools' seams inside the chain: chain mode
// unless the tool is the only source, and the chain's environment and runner.
func (b defaultBuild) toolSeams(o *DefaultAzureCredentialOptions) devToolSeams {
	return devToolSeams{runner: o.toolRunner, clock: o.clock, getenv: b.getenv, inChain: !b.alone}
}

// NewDefaultAzureCredential constructs a DefaultAzureCredential. Pass nil to
// accept default options. It fails only for contradictory options or an
// invalid AZURE_TOKEN_CREDENTIALS value; a source that cannot be set up is
// reported when the chain reaches it: as unavailable when it is not
// configured here, and as the chain's failure (logged once at Warn here)
// when the environment selects it but its configuration is broken.
func NewDefaultAzureCredential(options *DefaultAzureCredentialOptions) (*DefaultAzureCredential, error) {
	o := DefaultAzureCredentialOptions{}
	if options != nil {
		o = *options
	}
	fake := o.getenv // nil: the process's environment
	lookup := func(name string) (string, bool) {
		if fake == nil {
			return os.LookupEnv(name)
		}
		v := fake(name)
		return v, v != ""
	}
	getenv := o.getenvOrOS()
	o.getenv = getenv
	if o.ManagedIdentityID != nil && o.ManagedIdentityClientID != "" {
		return nil, errors.New(credNameDefault + ": ManagedIdentityID and ManagedIdentityClientID are both set; set only one")
	}
	selected, err := selectDefaultSources(lookup, o.RequireAzureTokenCredentials)
	if err != nil {
		return nil, err
	}
	var rows []defaultSource
	for _, s := range defaultSources {
		if !selected(s) || (s.excluded(&o) && !(s.interactive && namedAlone(lookup, s.name))) {
			continue
		}
		rows = append(rows, s)
	}
	if rows, err = orderTools(rows, o.DeveloperToolOrder); err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, errors.New(credNameDefault + ": every source is excluded (by the Exclude options or AZURE_TOKEN_CREDENTIALS); include at least one")
	}
	logger := o.logger()
	sources := make([]chainSource, len(rows))
	for i, s := range rows {
		cred, err := s.build(&o, defaultBuild{getenv: getenv, alone: len(rows) == 1})
		switch {
		case err == nil:
		case isUnavailable(err):
			logger.Debug(credNameDefault+": a source is not set up here", "source", s.name, "reason", err.Error())
			cred = placeholderSource{name: s.name, err: err}
		default:
			// The environment selects this source but its configuration
			// cannot work: the chain will stop here, and the operator must
			// fix it.
			logger.Warn(credNameDefault+": a source's configuration is broken; GetToken will fail with this error until it is fixed", "source", s.name, "error", err.Error())
			cred = placeholderSource{name: s.name, err: err}
		}
		sources[i] = chainSource{name: s.name, cred: cred, interactive: s.interactive}
	}
	chain := newChain(credNameDefault, sources, false, !o.DisableConcurrentProbing && len(sources) > 1, logger, o.clock)
	return &DefaultAzureCredential{chain: chain}, nil
}

// selectDefaultSources reads AZURE_TOKEN_CREDENTIALS and returns which rows
// of the table it selects.
func selectDefaultSources(lookup func(string) (string, bool), required bool) (func(defaultSource) bool, error) {
	raw, set := lookup(env.TokenCredentials)
	value := strings.TrimSpace(raw)
	valid := func() string {
		names := []string{`"dev"`, `"prod"`}
		for _, s := range defaultSources {
			names = append(names, `"`+s.name+`"`)
		}
		return strings.Join(names, ", ")
	}
	switch {
	case !set && required:
		return nil, fmt.Errorf("%s: RequireAzureTokenCredentials is set but %s is not; set it to one of %s", credNameDefault, env.TokenCredentials, valid())
	case !set:
		return func(defaultSource) bool { return true }, nil
	case strings.EqualFold(value, "dev") || strings.EqualFold(value, "prod"):
		group := strings.ToLower(value)
		return func(s defaultSource) bool { return s.group == group }, nil
	}
	for _, s := range defaultSources {
		if strings.EqualFold(value, s.name) {
			name := s.name
			return func(s defaultSource) bool { return s.name == name }, nil
		}
	}
	return nil, fmt.Errorf("%s: %s=%q is not valid; use one of %s", credNameDefault, env.TokenCredentials, raw, valid())
}

// namedAlone reports whether AZURE_TOKEN_CREDENTIALS names this source alone:
// naming InteractiveBrowserCredential enables it.
func namedAlone(lookup func(string) (string, bool), name string) bool {
	v, _ := lookup(env.TokenCredentials)
	return strings.EqualFold(strings.TrimSpace(v), name)
}

// GetToken returns a token from the first source that gives one.
func (c *DefaultAzureCredential) GetToken(ctx context.Context, opts TokenRequestOptions) (AccessToken, error) {
	return c.chain.GetToken(ctx, opts)
}

// Resolved returns the name of the source in use, once one has given a
// token, and whether one has.
func (c *DefaultAzureCredential) Resolved() (string, bool) { return c.chain.Resolved() }

// Sources returns the names of the chain's sources, in order.
func (c *DefaultAzureCredential) Sources() []string { return c.chain.Sources() }

// Diagnose reports how every source answers and what GetToken's walk does
// with it. It walks the sources as GetToken does, by the same rule, and
// marks each source asked (its answer was used), started early (its answer
// was not needed) or not started, with the reason. Then it asks, one at a
// time, each source that was not started, so that the report shows every
// source's outcome with the identity each token is for. It waits for the
// sources it started, under their own bounds. It does not change which
// source GetToken uses, and never asks a source that would ask a person to
// sign in. It is what `azcred doctor` prints.
func (c *DefaultAzureCredential) Diagnose(ctx context.Context, opts TokenRequestOptions) []ChainAttempt {
	var walked []chainSource
	for _, s := range c.chain.sources {
		if !s.interactive {
			walked = append(walked, s)
		}
	}
	w := c.chain.walkOnce(ctx, opts, walked, true)
	decider := -1 // the source whose answer decided the walk
	if n := len(w.attempts); n > 0 && w.attempts[n-1].Outcome != OutcomeUnavailable {
		decider = n - 1
	}
	out := make([]ChainAttempt, 0, len(c.chain.sources))
	k := 0 // index into walked
	for _, s := range c.chain.sources {
		if s.interactive {
			out = append(out, ChainAttempt{Source: s.name, Outcome: OutcomeUnavailable, Walk: WalkNotStarted,
				NotStartedReason: "it would ask a person to sign in, so it is not asked here",
				Err:              NewCredentialUnavailableError(s.name, "not asked: it would ask a person to sign in", nil)})
			continue
		}
		i := k
		k++
		var a ChainAttempt
		switch {
		case i < len(w.attempts):
			a = w.attempts[i]
			if a.Outcome == OutcomeSucceeded {
				a.Identity = identityMap(w.token.Token) // the walk's winner
			}
		case w.answers[i] != nil:
			a = attemptOf(s.name, w.answers[i].tok, w.answers[i].err, w.answers[i].duration)
			a.Detail = w.answers[i].detail
			a.Walk = WalkStartedEarly
		default:
			if ctx.Err() != nil {
				a = ChainAttempt{Source: s.name, Outcome: OutcomeUnavailable, Err: ctx.Err()}
			} else {
				octx, from := withOrigin(ctx)
				start := c.chain.clock.Now()
				tok, err := s.cred.GetToken(octx, opts)
				a = attemptOf(s.name, tok, err, c.chain.clock.Now().Sub(start))
				a.Detail = from.get()
			}
			a.Walk = WalkNotStarted
			a.NotStartedReason = notStartedReason(w, decider)
		}
		out = append(out, a)
	}
	return out
}

// attemptOf is the attempt of one answer.
func attemptOf(name string, tok AccessToken, err error, d time.Duration) ChainAttempt {
	a := ChainAttempt{Source: name, Outcome: OutcomeSucceeded, Duration: d, Err: err}
	switch {
	case err == nil:
		a.Identity = identityMap(tok.Token)
	case isUnavailable(err):
		a.Outcome = OutcomeUnavailable
	default:
		a.Outcome = OutcomeFailed
	}
	return a
}

func identityMap(token string) map[string]string {
	m := map[string]string{}
	for _, f := range tokenIdentity(token) {
		m[f.key] = f.value
	}
	return m
}

// notStartedReason says why a walk did not start a source.
func notStartedReason(w walkResult, decider int) string {
	if decider < 0 {
		return "the walk ended before reaching it"
	}
	d := w.attempts[decider]
	switch {
	case d.Outcome == OutcomeFailed:
		return d.Source + " is configured but failed, which stops the chain"
	case w.costs[decider] == costDecided:
		return d.Source + " is configured and answered"
	}
	return d.Source + " gave a token first"
}

func (c *DefaultAzureCredential) credentialName() string { return credNameDefault }

// placeholderSource holds the slot of a source whose constructor failed
// and returns that error when the chain reaches it: unavailable when the
// source is not set up here, and otherwise (the environment selects the
// source but its configuration cannot work) the error itself, which stops
// the chain.
type placeholderSource struct {
	name string
	err  error
}

func (u placeholderSource) GetToken(context.Context, TokenRequestOptions) (AccessToken, error) {
	return AccessToken{}, u.err
}

func (u placeholderSource) credentialName() string { return u.name }

var _ TokenCredential = (*DefaultAzureCredential)(nil)
