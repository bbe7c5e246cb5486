package azcred

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/jwtx"
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
	// speculative sources may be started before the earlier ones have
	// answered; a source that asks a person (interactive sign-in) never is.
	speculative bool
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
		if s == nil {
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

// walkSources tries the sources in order (starting the speculative ones at
// once when probing) and returns the first token and the index of its source.
func (c *ChainedTokenCredential) walkSources(ctx context.Context, opts TokenRequestOptions) (AccessToken, int, error) {
	type result struct {
		tok      AccessToken
		err      error
		duration time.Duration
	}
	results := make([]chan result, len(c.sources))
	run := func(ctx context.Context, s chainSource) result {
		start := c.clock.Now()
		tok, err := s.cred.GetToken(ctx, opts)
		return result{tok, err, c.clock.Now().Sub(start)}
	}
	probeCtx, cancelProbes := context.WithCancel(ctx)
	defer cancelProbes()
	if c.probe {
		for i, s := range c.sources {
			if !s.speculative {
				continue
			}
			ch := make(chan result, 1)
			results[i] = ch
			c.probes.Add(1)
			go func() {
				defer c.probes.Done()
				ch <- run(probeCtx, s)
			}()
		}
	}

	attempts := make([]ChainAttempt, 0, len(c.sources))
	for i, s := range c.sources {
		var r result
		if ch := results[i]; ch != nil {
			select {
			case r = <-ch:
			case <-ctx.Done():
				return AccessToken{}, -1, ctx.Err()
			}
		} else {
			r = run(ctx, s)
		}
		if r.err == nil {
			attempts = append(attempts, ChainAttempt{Source: s.name, Outcome: OutcomeSucceeded, Duration: r.duration})
			c.logAttempt(ctx, attempts[len(attempts)-1])
			if c.winner.Swap(int32(i)) != int32(i) {
				c.logWinner(ctx, s.name, opts, r.tok)
			}
			return r.tok, i, nil
		}
		if ctx.Err() != nil {
			return AccessToken{}, -1, ctx.Err()
		}
		a := ChainAttempt{Source: s.name, Outcome: OutcomeFailed, Duration: r.duration, Err: r.err}
		if isUnavailable(r.err) {
			a.Outcome = OutcomeUnavailable
		}
		attempts = append(attempts, a)
		c.logAttempt(ctx, a)
		if a.Outcome == OutcomeFailed {
			return AccessToken{}, -1, &ChainError{chain: c.name, attempts: attempts, deciding: r.err}
		}
	}
	return AccessToken{}, -1, &ChainError{chain: c.name, attempts: attempts,
		deciding: NewCredentialUnavailableError(c.name, "no source is available", nil)}
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
		fmt.Fprintf(&b, ": %s failed, so the chain stopped", e.attempts[n-1].Source)
	} else {
		b.WriteString(": no source is available")
	}
	b.WriteString(". Attempts:")
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
