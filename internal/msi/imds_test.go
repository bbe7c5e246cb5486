package msi

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/env"
	"github.com/azcred/azcred/internal/httpx"
	"github.com/azcred/azcred/internal/probewait"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

const arm = "https://management.azure.com"

func noEnv() env.Getenv { return func(string) string { return "" } }

// imdsFixture is an emulator with a fake clock and an IMDS endpoint.
type imdsFixture struct {
	clk  *clock.Fake
	e    *emulator.Emulator
	imds *emulator.MIHost
}

func newIMDS(t *testing.T) imdsFixture {
	t.Helper()
	clk := clock.NewFake(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	e := emulator.NewT(t, &emulator.Options{Clock: clk})
	e.SetSystemAssignedIdentity(emulator.ManagedIdentity{})
	h, err := e.StartIMDS()
	require.NoError(t, err)
	return imdsFixture{clk: clk, e: e, imds: h}
}

func (f imdsFixture) client(t *testing.T, modify func(*Config)) *Client {
	t.Helper()
	cfg := Config{Name: "Test", Getenv: noEnv(), IMDSBase: f.imds.URL(), Clock: f.clk}
	if modify != nil {
		modify(&cfg)
	}
	c, err := New(cfg)
	require.NoError(t, err)
	require.Equal(t, IMDS, c.Source())
	return c
}

// drive advances clk by step whenever something waits on it, until stop is
// called.
func drive(clk *clock.Fake, step time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for clk.BlockUntilTimers(ctx, 1) == nil {
			clk.Advance(step)
		}
	}()
	return func() { cancel(); <-done }
}

func statuses(reqs []emulator.Request) []int {
	out := make([]int, len(reqs))
	for i, r := range reqs {
		out[i] = r.Status
	}
	return out
}

func TestIMDSRetries410ForAtLeast70Seconds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		retry httpx.Policy
	}{
		{"default policy", httpx.Policy{}},
		{"caller allows one retry", httpx.Policy{MaxRetries: 1, RetryDelay: time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newIMDS(t)
			f.imds.InjectFault(emulator.MIFault{For: 70 * time.Second, Status: http.StatusGone})
			c := f.client(t, func(cfg *Config) { cfg.Retry = tc.retry })
			stop := drive(f.clk, time.Second)
			tok, err := c.GetToken(context.Background(), arm)
			stop()
			require.NoError(t, err)
			assert.NotEmpty(t, tok.AccessToken)
			reqs := f.imds.Requests()
			require.GreaterOrEqual(t, len(reqs), 3)
			last := reqs[len(reqs)-1]
			assert.Equal(t, http.StatusOK, last.Status)
			for _, r := range reqs[:len(reqs)-1] {
				assert.Equal(t, http.StatusGone, r.Status)
			}
			assert.GreaterOrEqual(t, last.Time.Sub(reqs[0].Time), 70*time.Second, "410 was retried for at least 70 s of fake time")
		})
	}
}

func TestIMDS410GivesUpAfterTheWindowAndPolicy(t *testing.T) {
	t.Parallel()
	f := newIMDS(t)
	f.imds.InjectFault(emulator.MIFault{For: time.Hour, Status: http.StatusGone})
	c := f.client(t, func(cfg *Config) { cfg.Retry = httpx.Policy{MaxRetries: 1, RetryDelay: time.Second} })
	stop := drive(f.clk, time.Second)
	_, err := c.GetToken(context.Background(), arm)
	stop()
	var re *ResponseError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, http.StatusGone, re.StatusCode)
	reqs := f.imds.Requests()
	span := reqs[len(reqs)-1].Time.Sub(reqs[0].Time)
	assert.GreaterOrEqual(t, span, 70*time.Second)
	assert.Less(t, span, 80*time.Second, "it stops soon after the 70 s window")
}

func TestIMDS429HonoursRetryAfter(t *testing.T) {
	t.Parallel()
	f := newIMDS(t)
	f.imds.InjectFault(emulator.MIFault{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"7"}}, Body: []byte(`{"error":"too_many_requests"}`)})
	c := f.client(t, nil)
	stop := drive(f.clk, time.Second)
	_, err := c.GetToken(context.Background(), arm)
	stop()
	require.NoError(t, err)
	reqs := f.imds.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, []int{429, 200}, statuses(reqs))
	assert.Equal(t, 7*time.Second, reqs[1].Time.Sub(reqs[0].Time), "waited exactly what Retry-After asked")
}

func TestIMDSStatusesRetriedOrNot(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status  int
		retried bool
	}{
		{404, true}, {410, true}, {429, true}, {500, true}, {501, true}, {503, true}, {505, true},
		{400, false}, {401, false}, {403, false},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			t.Parallel()
			f := newIMDS(t)
			f.imds.InjectFault(emulator.MIFault{Status: tc.status, Body: []byte(`{"error":"x","error_description":"injected"}`)})
			c := f.client(t, nil)
			stop := drive(f.clk, time.Second)
			_, err := c.GetToken(context.Background(), arm)
			stop()
			if tc.retried {
				require.NoError(t, err)
				assert.Len(t, f.imds.Requests(), 2)
				return
			}
			require.Error(t, err)
			assert.Len(t, f.imds.Requests(), 1, "not retried")
		})
	}
}

func TestIMDS400Classification(t *testing.T) {
	t.Parallel()
	f := newIMDS(t)
	f.e.SetSystemAssignedIdentity(emulator.ManagedIdentity{}) // replaced below by a host without one
	sysless := emulator.NewT(t, &emulator.Options{Clock: f.clk})
	h, err := sysless.StartIMDS()
	require.NoError(t, err)

	c, err := New(Config{Getenv: noEnv(), IMDSBase: h.URL(), Clock: f.clk})
	require.NoError(t, err)
	_, err = c.GetToken(context.Background(), arm)
	var un *UnavailableError
	require.ErrorAs(t, err, &un, "400 for the system-assigned identity: none here")
	assert.Contains(t, un.Error(), "Identity not found")

	c, err = New(Config{Getenv: noEnv(), IMDSBase: h.URL(), Clock: f.clk, ID: ID{ClientID, "not-assigned"}})
	require.NoError(t, err)
	_, err = c.GetToken(context.Background(), arm)
	var re *ResponseError
	require.ErrorAs(t, err, &re, "400 for a user-assigned identity: a failure")
	assert.Equal(t, 400, re.StatusCode)
	assert.Len(t, h.Requests(), 2, "neither was retried")
}

func TestIMDSContextCancellationStopsAtOnce(t *testing.T) {
	t.Parallel()
	f := newIMDS(t)
	f.imds.InjectFault(emulator.MIFault{Count: 100, Status: http.StatusInternalServerError})
	c := f.client(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.GetToken(ctx, arm)
		errc <- err
	}()
	require.NoError(t, f.clk.BlockUntilTimers(context.Background(), 1), "waiting out the first backoff")
	cancel()
	err := <-errc
	require.ErrorIs(t, err, context.Canceled)
	assert.Len(t, f.imds.Requests(), 1, "no further try after cancellation")
}

// Chain mode.

func chainClient(t *testing.T, f imdsFixture, base string) *Client {
	t.Helper()
	c, err := New(Config{Getenv: noEnv(), IMDSBase: base, Clock: f.clk, Chain: true})
	require.NoError(t, err)
	return c
}

func TestChainHealthyIMDSCostsOneRequest(t *testing.T) {
	t.Parallel()
	f := newIMDS(t)
	c := chainClient(t, f, f.imds.URL())
	tok, err := c.GetToken(context.Background(), arm)
	require.NoError(t, err)
	_, err = f.e.VerifyAccessToken(tok.AccessToken)
	require.NoError(t, err)
	reqs := f.imds.Requests()
	require.Len(t, reqs, 1, "the token request is the first and only request")
	assert.Equal(t, "true", reqs[0].Header.Get("Metadata"))
	assert.Equal(t, arm, reqs[0].Query.Get("resource"))
}

func TestChainClosedPortIsUnavailableWithoutRetry(t *testing.T) {
	t.Parallel()
	f := newIMDS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	c := chainClient(t, f, "http://"+addr)
	_, err = c.GetToken(context.Background(), arm)
	var un *UnavailableError
	require.ErrorAs(t, err, &un)
	assert.Equal(t, 0, f.clk.Timers(), "nothing waits to retry")
}

// holdingListener accepts connections and never answers, counting them.
type holdingListener struct {
	ln       net.Listener
	mu       sync.Mutex
	conns    []net.Conn
	accepted chan struct{}
	done     chan struct{}
	readers  sync.WaitGroup
}

func receive(t *testing.T, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a connection")
	}
}

func newHoldingListener(t *testing.T) *holdingListener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	h := &holdingListener{ln: ln, accepted: make(chan struct{}, 16), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
			h.readers.Add(1)
			go func() {
				defer h.readers.Done()
				// Signal once the request has arrived: the client holds the
				// connection by then.
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" {
						h.accepted <- struct{}{}
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-h.done
		h.mu.Lock()
		for _, c := range h.conns {
			_ = c.Close()
		}
		h.mu.Unlock()
		h.readers.Wait()
	})
	return h
}

func TestChainSilentListenerProbesOnceThenUnavailable(t *testing.T) {
	t.Parallel()
	f := newIMDS(t)
	h := newHoldingListener(t)
	c := chainClient(t, f, "http://"+h.ln.Addr().String())
	errc := make(chan error, 1)
	waiting := make(chan struct{}, 4)
	ctx := probewait.With(context.Background(), func() { waiting <- struct{}{} })
	go func() {
		_, err := c.GetToken(ctx, arm)
		errc <- err
	}()
	receive(t, h.accepted) // the token request
	require.NoError(t, f.clk.BlockUntilTimers(context.Background(), 2))
	f.clk.Advance(DefaultProbeTimeout / probeGraceFraction)
	receive(t, h.accepted) // the probe, sent once the grace is over
	require.NoError(t, f.clk.BlockUntilTimers(context.Background(), 2))
	f.clk.Advance(DefaultProbeTimeout / probeGraceFraction)
	receive(t, waiting) // the chain is told it waits on the network
	// One probe timeout in all decides, not one for the request and another
	// for the probe.
	f.clk.Advance(DefaultProbeTimeout - 2*DefaultProbeTimeout/probeGraceFraction)
	err := <-errc
	var un *UnavailableError
	require.ErrorAs(t, err, &un)
	assert.Contains(t, un.Error(), "answered neither")
	h.mu.Lock()
	assert.Len(t, h.conns, 2, "the token request and one probe")
	h.mu.Unlock()
}

func TestChainSlowIMDSIsNotUnavailable(t *testing.T) {
	t.Parallel()
	f := newIMDS(t)
	gate := make(chan struct{})
	f.imds.InjectFault(emulator.MIFault{Gate: gate, SkipProbes: true})
	c := chainClient(t, f, f.imds.URL())
	type res struct {
		tok Token
		err error
	}
	out := make(chan res, 1)
	go func() {
		tok, err := c.GetToken(context.Background(), arm)
		out <- res{tok, err}
	}()
	require.NoError(t, f.clk.BlockUntilTimers(context.Background(), 1))
	require.Eventually(t, func() bool { return len(f.imds.Requests()) == 1 }, 5*time.Second, time.Millisecond)
	f.clk.Advance(DefaultProbeTimeout / probeGraceFraction) // the token request is slow: probe
	require.Eventually(t, func() bool {
		reqs := f.imds.Requests()
		return len(reqs) == 2 && reqs[1].Status != 0
	}, 5*time.Second, time.Millisecond, "the probe was answered at once")
	close(gate) // IMDS got its token from Entra
	r := <-out
	require.NoError(t, r.err)
	assert.NotEmpty(t, r.tok.AccessToken)
	reqs := f.imds.Requests()
	require.Len(t, reqs, 2, "token request and probe; the token request was not re-sent")
	assert.Equal(t, "", reqs[1].Header.Get("Metadata"), "the probe is header-less")
	assert.Empty(t, reqs[1].Query, "the probe has no query")
	assert.Equal(t, http.StatusBadRequest, reqs[1].Status)
	assert.Equal(t, http.StatusOK, reqs[0].Status)
}

func TestChainRetryableFirstAnswerContinuesUnderFullPolicy(t *testing.T) {
	t.Parallel()
	for _, status := range []int{404, 410, 429, 500, 503} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			f := newIMDS(t)
			f.imds.InjectFault(emulator.MIFault{Status: status})
			c := chainClient(t, f, f.imds.URL())
			answered := make(chan struct{})
			c.firstAnswered = func() { close(answered) }
			type res struct {
				tok Token
				err error
			}
			out := make(chan res, 1)
			go func() {
				tok, err := c.GetToken(context.Background(), arm)
				out <- res{tok, err}
			}()
			receive(t, answered) // within the probe timeout: the clock has not moved
			stop := drive(f.clk, time.Second)
			r := <-out
			stop()
			tok, err := r.tok, r.err
			require.NoError(t, err)
			assert.NotEmpty(t, tok.AccessToken)
			assert.Equal(t, []int{status, 200}, statuses(f.imds.Requests()))
		})
	}
}

func TestChainAnswersThatMeanNoIdentity(t *testing.T) {
	t.Parallel()
	docker := `connecting to 169.254.169.254:80: connecting to 169.254.169.254:80: dial tcp 169.254.169.254:80: connectex: A socket operation was attempted to an unreachable network.`
	for _, tc := range []struct {
		name        string
		fault       emulator.MIFault
		unavailable bool
	}{
		{"non-JSON 200", emulator.MIFault{NonJSON: true}, true},
		{"non-JSON 404 after retries", emulator.MIFault{NonJSON: true, Status: 401}, true},
		{"Docker Desktop 403", emulator.MIFault{Status: 403, Body: []byte(docker)}, true},
		{"400 for the system identity", emulator.MIFault{Status: 400, Body: []byte(`{"error":"invalid_request","error_description":"Identity not found"}`)}, true},
		{"other 403", emulator.MIFault{Status: 403, Body: []byte(`{"error":"forbidden"}`)}, false},
		{"401 JSON", emulator.MIFault{Status: 401, Body: []byte(`{"error":"unauthorized"}`)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newIMDS(t)
			f.imds.InjectFault(tc.fault)
			c := chainClient(t, f, f.imds.URL())
			_, err := c.GetToken(context.Background(), arm)
			require.Error(t, err)
			var un *UnavailableError
			assert.Equal(t, tc.unavailable, errors.As(err, &un), "%v", err)
			assert.Len(t, f.imds.Requests(), 1)
		})
	}
}

func TestIMDSRetries501And505ButAppServiceDoesNot(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusNotImplemented, http.StatusHTTPVersionNotSupported} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			f := newIMDS(t)
			f.imds.InjectFault(emulator.MIFault{Status: status, Body: []byte(`{"error":"x"}`)})
			c := f.client(t, nil)
			stop := drive(f.clk, time.Second)
			tok, err := c.GetToken(context.Background(), arm)
			stop()
			require.NoError(t, err)
			assert.NotEmpty(t, tok.AccessToken)
			assert.Equal(t, []int{status, http.StatusOK}, statuses(f.imds.Requests()))

			// App Service keeps the common rule: 501 and 505 are final.
			as, err := f.e.StartAppService()
			require.NoError(t, err)
			as.InjectFault(emulator.MIFault{Status: status, Body: []byte(`{"error":"x"}`)})
			vars := as.Env()
			c, err = New(Config{Getenv: func(k string) string { return vars[k] }, Clock: f.clk})
			require.NoError(t, err)
			require.Equal(t, AppService, c.Source())
			_, err = c.GetToken(context.Background(), arm)
			var re *ResponseError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, status, re.StatusCode)
			assert.Equal(t, []int{status}, statuses(as.Requests()), "not retried")
		})
	}
}

// Chain mode after IMDS has answered.

const vault = "https://vault.azure.net"

// firstChainToken gets the chain-mode client's first token, which ends
// chain mode, and checks that it took the one request.
func firstChainToken(t *testing.T, f imdsFixture, c *Client) {
	t.Helper()
	_, err := c.GetToken(context.Background(), arm)
	require.NoError(t, err)
	require.Len(t, f.imds.Requests(), 1)
}

// tokenRequests checks that every request after the first is a token
// request (Metadata, resource) for resource: no probe.
func tokenRequests(t *testing.T, reqs []emulator.Request, resource string) {
	t.Helper()
	for _, r := range reqs[1:] {
		assert.Equal(t, "true", r.Header.Get("Metadata"), "no header-less probe")
		assert.Equal(t, resource, r.Query.Get("resource"))
	}
}

func TestChainAfterIMDSAnsweredUsesTheFullPolicy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fault emulator.MIFault
		want  []int
	}{
		// Two drops: a reused idle connection may be retried once by
		// net/http itself; the second drop reaches azcred either way.
		{"dropped connections", emulator.MIFault{Count: 2, Drop: true}, []int{200, 0, 0, 200}},
		{"503", emulator.MIFault{Status: http.StatusServiceUnavailable, Body: []byte(`{"error":"busy"}`)}, []int{200, 503, 200}},
		{"501", emulator.MIFault{Status: http.StatusNotImplemented, Body: []byte(`{"error":"x"}`)}, []int{200, 501, 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newIMDS(t)
			c := chainClient(t, f, f.imds.URL())
			firstChainToken(t, f, c)
			f.imds.InjectFault(tc.fault)
			stop := drive(f.clk, time.Second)
			tok, err := c.GetToken(context.Background(), vault)
			stop()
			require.NoError(t, err, "retried under the full policy, not reported unavailable")
			assert.NotEmpty(t, tok.AccessToken)
			reqs := f.imds.Requests()
			assert.Equal(t, tc.want, statuses(reqs))
			tokenRequests(t, reqs, vault)
		})
	}
}

func TestChainAfterIMDSAnsweredFailureIsNotUnavailable(t *testing.T) {
	t.Parallel()
	f := newIMDS(t)
	c := chainClient(t, f, f.imds.URL())
	firstChainToken(t, f, c)
	f.imds.InjectFault(emulator.MIFault{Count: 100, Drop: true})
	stop := drive(f.clk, time.Second)
	_, err := c.GetToken(context.Background(), vault)
	stop()
	var re *ResponseError
	require.ErrorAs(t, err, &re, "IMDS is known to be there: a failure")
	var un *UnavailableError
	assert.False(t, errors.As(err, &un))
	// Six retries: at least seven requests (net/http may re-send one on a
	// reused connection by itself).
	assert.GreaterOrEqual(t, len(f.imds.Requests()), 1+IMDSDefaults.MaxRetries+1)
}

func TestChainAfterIMDSAnsweredSlowAnswerIsNotProbed(t *testing.T) {
	t.Parallel()
	f := newIMDS(t)
	c := chainClient(t, f, f.imds.URL())
	firstChainToken(t, f, c)
	gate := make(chan struct{})
	f.imds.InjectFault(emulator.MIFault{Gate: gate})
	type res struct {
		tok Token
		err error
	}
	out := make(chan res, 1)
	go func() {
		tok, err := c.GetToken(context.Background(), vault)
		out <- res{tok, err}
	}()
	require.Eventually(t, func() bool { return len(f.imds.Requests()) == 2 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, 0, f.clk.Timers(), "no probe timer runs")
	f.clk.Advance(10 * DefaultProbeTimeout)
	close(gate)
	r := <-out
	require.NoError(t, r.err)
	assert.NotEmpty(t, r.tok.AccessToken)
	reqs := f.imds.Requests()
	assert.Equal(t, []int{200, 200}, statuses(reqs), "the slow answer was waited for, without a probe")
	tokenRequests(t, reqs, vault)
}

// slowDialer dials loopback addresses, the first connection at once and
// every later one as if connecting took slow: a dial whose context ends
// sooner fails as a bounded dial would.
type slowDialer struct {
	slow  time.Duration
	mu    sync.Mutex
	dials int
	cut   int
}

func (d *slowDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.dials++
	n := d.dials
	if dl, ok := ctx.Deadline(); ok && n > 1 && time.Until(dl) < d.slow {
		d.cut++
		d.mu.Unlock()
		return nil, &net.OpError{Op: "dial", Net: network, Err: context.DeadlineExceeded}
	}
	d.mu.Unlock()
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

func TestChainAfterIMDSAnsweredConnectingIsNotBoundedByTheProbeTimeout(t *testing.T) {
	t.Parallel()
	f := newIMDS(t)
	d := &slowDialer{slow: 3 * DefaultProbeTimeout}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	c, err := New(Config{Getenv: noEnv(), IMDSBase: f.imds.URL(), Clock: f.clk, Chain: true, Transport: hc})
	require.NoError(t, err)
	firstChainToken(t, f, c)
	stop := drive(f.clk, time.Second)
	tok, err := c.GetToken(context.Background(), vault)
	stop()
	require.NoError(t, err)
	assert.NotEmpty(t, tok.AccessToken)
	assert.Equal(t, []int{200, 200}, statuses(f.imds.Requests()))
	d.mu.Lock()
	defer d.mu.Unlock()
	assert.Equal(t, 2, d.dials)
	assert.Equal(t, 0, d.cut, "no connection was cut at the probe timeout")
}

func TestChainFirstContactStillBoundsConnecting(t *testing.T) {
	t.Parallel()
	f := newIMDS(t)
	// Every connection is slow, the first too: in chain mode, before IMDS
	// has answered, connecting is cut at the probe timeout.
	d := &slowDialer{slow: 3 * DefaultProbeTimeout}
	d.dials = 1
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	c, err := New(Config{Getenv: noEnv(), IMDSBase: f.imds.URL(), Clock: f.clk, Chain: true, Transport: hc})
	require.NoError(t, err)
	_, err = c.GetToken(context.Background(), arm)
	var un *UnavailableError
	require.ErrorAs(t, err, &un)
	assert.Empty(t, f.imds.Requests())
	assert.Equal(t, 0, f.clk.Timers(), "nothing waits to retry")
	// Still no IMDS seen: the next call is bounded the same way.
	_, err = c.GetToken(context.Background(), arm)
	require.ErrorAs(t, err, &un)
	d.mu.Lock()
	defer d.mu.Unlock()
	assert.Equal(t, 2, d.cut)
}
