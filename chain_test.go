package azcred

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/internal/jwtx"
	"github.com/azcred/azcred/internal/probewait"
)

// fakeSource is a chain source with a fixed answer that counts its calls and
// can hold every call until released.
type fakeSource struct {
	name    string
	outcome Outcome
	token   string
	calls   atomic.Int32
	started chan struct{} // closed at the first call, when non-nil
	release chan struct{} // calls wait for it, when non-nil
	once    sync.Once
	// cost is what the source declares; a probe signals at once that it is
	// waiting on the network, unless silent (a healthy IMDS).
	cost   sourceCost
	silent bool
}

func (f *fakeSource) chainCost() sourceCost { return f.cost }

func newFakeSource(name string, o Outcome) *fakeSource {
	return &fakeSource{name: name, outcome: o, token: "token-of-" + name}
}

func (f *fakeSource) GetToken(ctx context.Context, _ TokenRequestOptions) (AccessToken, error) {
	f.calls.Add(1)
	if f.cost == costProbe && !f.silent {
		probewait.Signal(ctx)
	}
	if f.started != nil {
		f.once.Do(func() { close(f.started) })
	}
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return AccessToken{}, ctx.Err()
		}
	}
	switch f.outcome {
	case OutcomeUnavailable:
		return AccessToken{}, NewCredentialUnavailableError(f.name, "not set up here", nil)
	case OutcomeFailed:
		return AccessToken{}, NewAuthenticationFailedError(f.name, "refused", nil)
	}
	return AccessToken{Token: f.token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func (f *fakeSource) credentialName() string { return f.name }

func chainOf(probe bool, fakes ...*fakeSource) *ChainedTokenCredential {
	sources := make([]chainSource, len(fakes))
	for i, f := range fakes {
		sources[i] = chainSource{name: f.name, cred: f}
	}
	return newChain("TestChain", sources, false, probe, discardLogger, nil)
}

func TestChainSemantics(t *testing.T) {
	t.Parallel()
	outcomes := []Outcome{OutcomeUnavailable, OutcomeFailed, OutcomeSucceeded}
	// Every combination of three sources' outcomes, in both modes.
	for _, a := range outcomes {
		for _, b := range outcomes {
			for _, c := range outcomes {
				combo := []Outcome{a, b, c}
				// The sequential walk's expected result.
				decided, want := -1, "unavailable"
				for i, o := range combo {
					if o == OutcomeUnavailable {
						continue
					}
					decided = i
					want = o.String()
					break
				}
				for _, probe := range []bool{false, true} {
					name := fmt.Sprintf("%v/%v/%v probe=%v", a, b, c, probe)
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						fakes := []*fakeSource{newFakeSource("A", a), newFakeSource("B", b), newFakeSource("C", c)}
						fakes[0].cost, fakes[1].cost, fakes[2].cost = costProbe, costProbe, costProcess
						chain := chainOf(probe, fakes...)
						tok, err := chain.GetToken(context.Background(), armRequest)
						chain.waitProbes()
						switch want {
						case "succeeded":
							require.NoError(t, err)
							assert.Equal(t, "token-of-"+fakes[decided].name, tok.Token)
							src, ok := chain.Resolved()
							assert.True(t, ok)
							assert.Equal(t, fakes[decided].name, src)
						case "failed":
							var af *AuthenticationFailedError
							require.ErrorAs(t, err, &af)
							assert.Equal(t, fakes[decided].name, af.Credential)
							assert.False(t, isUnavailable(err), "a chain that stopped on a failure is not unavailable")
						case "unavailable":
							var u *CredentialUnavailableError
							require.ErrorAs(t, err, &u)
							assert.Equal(t, "TestChain", u.Credential)
							var af *AuthenticationFailedError
							assert.False(t, errors.As(err, &af))
						}
						if err != nil {
							var ce *ChainError
							require.ErrorAs(t, err, &ce)
							attempts := ce.Attempts()
							wantN := 3
							if decided >= 0 {
								wantN = decided + 1
							}
							require.Len(t, attempts, wantN)
							for i, at := range attempts {
								assert.Equal(t, fakes[i].name, at.Source)
								assert.Equal(t, combo[i], at.Outcome)
							}
						}
						// Which sources ran: sequentially, only those up to the
						// decision; with probing, those and perhaps later ones
						// started while the probes waited; each at most once.
						for i, f := range fakes {
							calls := f.calls.Load()
							assert.LessOrEqual(t, calls, int32(1), "source %s", f.name)
							if !probe || decided < 0 || i <= decided {
								assert.Equal(t, decided < 0 || i <= decided, calls == 1, "source %s ran", f.name)
							}
						}
					})
				}
			}
		}
	}
}

func TestChainProbesRunConcurrentlyAndTheInOrderWinnerWins(t *testing.T) {
	t.Parallel()
	a := newFakeSource("A", OutcomeUnavailable)
	b := newFakeSource("B", OutcomeSucceeded)
	c := newFakeSource("C", OutcomeSucceeded)
	for _, f := range []*fakeSource{a, b, c} {
		f.started, f.release = make(chan struct{}), make(chan struct{})
	}
	// Two network probes waiting, then a tool: all three may run at once.
	a.cost, b.cost, c.cost = costProbe, costProbe, costProcess
	chain := chainOf(true, a, b, c)
	type res struct {
		tok AccessToken
		err error
	}
	done := make(chan res, 1)
	go func() {
		tok, err := chain.GetToken(context.Background(), armRequest)
		done <- res{tok, err}
	}()
	// All three have started before any is released: they ran concurrently.
	<-a.started
	<-b.started
	<-c.started
	// Finish out of order: the later source first; the winner must still be
	// the first in order that succeeds.
	close(c.release)
	select {
	case <-done:
		t.Fatal("decided before the earlier sources answered")
	default:
	}
	close(b.release)
	select {
	case <-done:
		t.Fatal("decided before the first source answered")
	default:
	}
	close(a.release)
	r := <-done
	require.NoError(t, r.err)
	assert.Equal(t, "token-of-B", r.tok.Token)
	chain.waitProbes()
	name, _ := chain.Resolved()
	assert.Equal(t, "B", name)
}

func TestChainDecisionCancelsLaterProbes(t *testing.T) {
	t.Parallel()
	a := newFakeSource("A", OutcomeSucceeded)
	a.cost, a.started, a.release = costProbe, make(chan struct{}), make(chan struct{})
	b := newFakeSource("B", OutcomeSucceeded)
	b.cost, b.started, b.release = costProcess, make(chan struct{}), make(chan struct{}) // never released
	chain := chainOf(true, a, b)
	done := make(chan AccessToken, 1)
	go func() {
		tok, err := chain.GetToken(context.Background(), armRequest)
		assert.NoError(t, err)
		done <- tok
	}()
	<-b.started // started while A waited on the network
	close(a.release)
	assert.Equal(t, "token-of-A", (<-done).Token)
	chain.waitProbes() // returns only because B's context was cancelled
}

func TestChainNonSpeculativeSourceNeverStartedEarly(t *testing.T) {
	t.Parallel()
	a := newFakeSource("A", OutcomeSucceeded)
	a.cost, a.started, a.release = costProbe, make(chan struct{}), make(chan struct{})
	interactive := newFakeSource("Interactive", OutcomeSucceeded) // declares no cost
	chain := newChain("TestChain", []chainSource{
		{name: "A", cred: a},
		{name: "Interactive", cred: interactive, interactive: true},
	}, false, true, discardLogger, nil)
	go func() {
		<-a.started
		close(a.release)
	}()
	_, err := chain.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	chain.waitProbes()
	assert.Equal(t, int32(0), interactive.calls.Load(), "not started while A waited on the network")

	// It runs, in order, when everything before it is unavailable.
	u := newFakeSource("U", OutcomeUnavailable)
	u.cost = costProbe
	chain = newChain("TestChain", []chainSource{{name: "U", cred: u}, {name: "Interactive", cred: interactive, interactive: true}}, false, true, discardLogger, nil)
	tok, err := chain.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	assert.Equal(t, "token-of-Interactive", tok.Token)
}

func TestChainStickyWinner(t *testing.T) {
	t.Parallel()
	a := newFakeSource("A", OutcomeUnavailable)
	b := newFakeSource("B", OutcomeSucceeded)
	c := newFakeSource("C", OutcomeSucceeded)
	chain := chainOf(false, a, b, c)
	var wg sync.WaitGroup
	for range 1000 {
		wg.Go(func() {
			tok, err := chain.GetToken(context.Background(), armRequest)
			assert.NoError(t, err)
			assert.Equal(t, "token-of-B", tok.Token)
		})
	}
	wg.Wait()
	assert.Equal(t, int32(1), a.calls.Load(), "concurrent callers shared one walk")
	assert.Equal(t, int32(1000), b.calls.Load(), "every call reached the winner once")
	assert.Equal(t, int32(0), c.calls.Load())
}

func TestChainRetrySourcesWalksEveryTime(t *testing.T) {
	t.Parallel()
	a := newFakeSource("A", OutcomeUnavailable)
	b := newFakeSource("B", OutcomeSucceeded)
	chain, err := NewChainedTokenCredential([]TokenCredential{a, b}, &ChainedTokenCredentialOptions{RetrySources: true})
	require.NoError(t, err)
	for range 3 {
		_, err := chain.GetToken(context.Background(), armRequest)
		require.NoError(t, err)
	}
	assert.Equal(t, int32(3), a.calls.Load())
	assert.Equal(t, int32(3), b.calls.Load())
}

func TestChainFailedWalkIsRetriedLater(t *testing.T) {
	t.Parallel()
	a := newFakeSource("A", OutcomeUnavailable)
	chain := chainOf(false, a)
	_, err := chain.GetToken(context.Background(), armRequest)
	require.Error(t, err)
	a.outcome = OutcomeSucceeded
	tok, err := chain.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	assert.Equal(t, "token-of-A", tok.Token)
}

func TestChainCallerCancellation(t *testing.T) {
	t.Parallel()
	a := newFakeSource("A", OutcomeSucceeded)
	a.started, a.release = make(chan struct{}), make(chan struct{})
	chain := chainOf(false, a)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := chain.GetToken(ctx, armRequest)
		errc <- err
	}()
	<-a.started
	// A second caller waits on the same walk.
	second := make(chan error, 1)
	go func() {
		_, err := chain.GetToken(context.Background(), armRequest)
		second <- err
	}()
	cancel()
	assert.ErrorIs(t, <-errc, context.Canceled)
	// The walk ended because its caller gave up: the second caller walks
	// again itself rather than inheriting a cancellation it did not cause.
	close(a.release)
	assert.NoError(t, <-second)
}

func TestChainErrorText(t *testing.T) {
	t.Parallel()
	e := &ChainError{chain: "DefaultAzureCredential", attempts: []ChainAttempt{
		{Source: "EnvironmentCredential", Outcome: OutcomeUnavailable, Duration: 1500 * time.Microsecond,
			Err: NewCredentialUnavailableError("EnvironmentCredential", "AZURE_TENANT_ID is set; AZURE_CLIENT_ID is missing", nil)},
		{Source: "AzureCLICredential", Outcome: OutcomeFailed, Duration: 2 * time.Second,
			Err: errors.New("AzureCLICredential: line one\nline two")},
	}, deciding: errors.New("x")}
	want := "DefaultAzureCredential: AzureCLICredential failed, so the chain stopped: line one\nAttempts:\n" +
		"  EnvironmentCredential  unavailable       2ms  AZURE_TENANT_ID is set; AZURE_CLIENT_ID is missing\n" +
		"  AzureCLICredential     failed             2s  line one\n" +
		"    line two"
	assert.Equal(t, want, e.Error())
	e.attempts = e.attempts[:1]
	assert.True(t, strings.HasPrefix(e.Error(), "DefaultAzureCredential: no source is available. Attempts:\n"))
	assert.Equal(t, "Outcome(9)", Outcome(9).String())
}

func TestChainLogsTheWinnerAndIdentity(t *testing.T) {
	t.Parallel()
	claims := map[string]any{"tid": "t-1", "oid": "o-1", "appid": "app-1"}
	header := jwtx.Encode([]byte(`{"alg":"none"}`))
	body := jwtx.Encode(mustJSON(t, claims))
	a := newFakeSource("A", OutcomeUnavailable)
	b := newFakeSource("B", OutcomeSucceeded)
	b.token = header + "." + body + ".c2ln"
	var logs bytes.Buffer
	chain, err := NewChainedTokenCredential([]TokenCredential{a, b}, &ChainedTokenCredentialOptions{
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	require.NoError(t, err)
	for range 2 {
		_, err = chain.GetToken(context.Background(), armRequest)
		require.NoError(t, err)
	}
	out := logs.String()
	assert.Equal(t, 1, strings.Count(out, "ChainedTokenCredential authenticated with B"), out)
	assert.Contains(t, out, "tid=t-1")
	assert.Contains(t, out, "oid=o-1")
	assert.Contains(t, out, "appid=app-1")
	assert.Contains(t, out, "source=A outcome=unavailable")
	assert.NotContains(t, out, b.token)
	assert.NotContains(t, out, "c2ln")
	assert.Equal(t, []string{"A", "B"}, chain.Sources())
}

func TestNewChainedTokenCredentialRefusesBadInput(t *testing.T) {
	t.Parallel()
	_, err := NewChainedTokenCredential(nil, nil)
	assert.ErrorContains(t, err, "no sources")
	_, err = NewChainedTokenCredential([]TokenCredential{newFakeSource("A", OutcomeSucceeded), nil}, nil)
	assert.ErrorContains(t, err, "source 2 is nil")
	c, err := NewChainedTokenCredential([]TokenCredential{TokenCredentialFunc(func(context.Context, TokenRequestOptions) (AccessToken, error) {
		return AccessToken{}, errors.New("boom")
	})}, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"source 1"}, c.Sources())
	_, err = c.GetToken(context.Background(), armRequest)
	assert.ErrorContains(t, err, "source 1")
}

// sleepySource answers after 2 ms; as a network probe it says at once that
// it waits on the network.
type sleepySource struct {
	name    string
	outcome Outcome
}

func (s sleepySource) chainCost() sourceCost { return costProbe }

func (s sleepySource) GetToken(ctx context.Context, _ TokenRequestOptions) (AccessToken, error) {
	probewait.Signal(ctx)
	t := time.NewTimer(2 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return AccessToken{}, ctx.Err()
	}
	if s.outcome == OutcomeUnavailable {
		return AccessToken{}, NewCredentialUnavailableError(s.name, "no", nil)
	}
	return AccessToken{Token: "t"}, nil
}

// BenchmarkChainProbing shows that with probing a chain of sources that
// wait on the network takes about as long as its slowest needed source, not
// the sum: three probes of 2 ms each.
func BenchmarkChainProbing(b *testing.B) {
	for _, probe := range []bool{false, true} {
		b.Run(fmt.Sprintf("probe=%v", probe), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sources := []chainSource{}
				for _, s := range []sleepySource{{"A", OutcomeUnavailable}, {"B", OutcomeUnavailable}, {"C", OutcomeSucceeded}} {
					sources = append(sources, chainSource{name: s.name, cred: s})
				}
				c := newChain("Bench", sources, false, probe, discardLogger, nil)
				if _, err := c.GetToken(context.Background(), armRequest); err != nil {
					b.Fatal(err)
				}
				c.waitProbes()
			}
		})
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func TestNewChainedTokenCredentialRefusesTypedNil(t *testing.T) {
	t.Parallel()
	var unchecked *ClientSecretCredential // a constructor's result whose error was ignored
	_, err := NewChainedTokenCredential([]TokenCredential{newFakeSource("A", OutcomeSucceeded), unchecked}, nil)
	assert.ErrorContains(t, err, "source 2 is nil")
}

// The start rule with fakes: what each source declares decides what may
// start before it has answered.
func TestChainStartRule(t *testing.T) {
	t.Parallel()
	t.Run("a configured source: nothing after it starts", func(t *testing.T) {
		t.Parallel()
		env := newFakeSource("Env", OutcomeSucceeded)
		env.cost, env.started, env.release = costDecided, make(chan struct{}), make(chan struct{})
		tool := newFakeSource("Tool", OutcomeSucceeded)
		tool.cost = costProcess
		chain := chainOf(true, env, tool)
		go func() { <-env.started; close(env.release) }()
		_, err := chain.GetToken(context.Background(), armRequest)
		require.NoError(t, err)
		chain.waitProbes()
		assert.Equal(t, int32(0), tool.calls.Load())
	})
	t.Run("a probe that does not wait on the network: nothing starts early", func(t *testing.T) {
		t.Parallel()
		imds := newFakeSource("IMDS", OutcomeSucceeded)
		imds.cost, imds.silent, imds.started, imds.release = costProbe, true, make(chan struct{}), make(chan struct{})
		tool := newFakeSource("Tool", OutcomeSucceeded)
		tool.cost = costProcess
		chain := chainOf(true, imds, tool)
		go func() { <-imds.started; close(imds.release) }()
		tok, err := chain.GetToken(context.Background(), armRequest)
		require.NoError(t, err)
		assert.Equal(t, "token-of-IMDS", tok.Token)
		chain.waitProbes()
		assert.Equal(t, int32(0), tool.calls.Load())
	})
	t.Run("while a probe waits, tools run one at a time, in order", func(t *testing.T) {
		t.Parallel()
		imds := newFakeSource("IMDS", OutcomeUnavailable)
		imds.cost, imds.started, imds.release = costProbe, make(chan struct{}), make(chan struct{})
		az := newFakeSource("az", OutcomeUnavailable)
		az.cost, az.started, az.release = costProcess, make(chan struct{}), make(chan struct{})
		azd := newFakeSource("azd", OutcomeSucceeded)
		azd.cost, azd.started, azd.release = costProcess, make(chan struct{}), make(chan struct{})
		chain := chainOf(true, imds, az, azd)
		done := make(chan AccessToken, 1)
		go func() {
			tok, err := chain.GetToken(context.Background(), armRequest)
			assert.NoError(t, err)
			done <- tok
		}()
		<-az.started // started while IMDS waits
		select {
		case <-azd.started:
			t.Fatal("azd started while az ran")
		default:
		}
		close(az.release) // az: unavailable
		<-azd.started     // now azd, IMDS still waiting
		close(azd.release)
		select {
		case <-done:
			t.Fatal("decided before IMDS answered")
		default:
		}
		close(imds.release)
		assert.Equal(t, "token-of-azd", (<-done).Token)
		chain.waitProbes()
		for _, f := range []*fakeSource{imds, az, azd} {
			assert.Equal(t, int32(1), f.calls.Load(), f.name)
		}
	})
}
