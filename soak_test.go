package azcred

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/exec"
	"github.com/azcred/azcred/internal/jwtx"
)

// The chaos soak: every source family lives through 24 hours of the fake
// clock, with tokens of one hour and of ten minutes, while its endpoint
// meets a schedule of faults and callers ask for tokens at a steady rate,
// some of them giving up. Time moves only when nothing is on the wire and
// jumps over the idle stretches, so a day takes a few seconds of real
// time; the emulator's endpoints are real loopback servers, the fake az is
// in process, and the faults are served half by the endpoint itself
// (emulator fault hooks) and half by the transport in front of it. The
// only real wait is one hung request per run, which the try timeout ends.
//
// What must hold: no GetToken fails while a token that was handed out
// earlier is still usable (ExpiresOn minus 30 s, the engine's margin for
// lifetimes of 5 minutes and more); no token is handed out at or after its
// issuer's expiry; the requests per hour stay bounded; no goroutine is left.

const (
	soakDuration   = 24 * time.Hour
	soakCallEvery  = 30 * time.Second // one batch of callers
	soakBatch      = 3                // callers per batch
	soakMargin     = 30 * time.Second // usable until ExpiresOn - soakMargin
	soakTryTimeout = time.Second      // real time: bounds the one real hang per run
)

// soakRetry keeps every source's retry defaults but bounds a try by
// soakTryTimeout, so that the hung request of each run costs little.
var soakRetry = RetryOptions{TryTimeout: soakTryTimeout}

type soakFault int

const (
	soakTimeout soakFault = iota
	soakReset
	soakThrottled
	soakServerError
	soakMalformed
	soakTruncated
	soakOutage
	soakFaultKinds
)

var soakFaultNames = [soakFaultKinds]string{"timeout", "reset", "429", "5xx", "malformed", "truncated", "outage"}

// soakFaults holds the faults due at one endpoint and counts what reached it.
type soakFaults struct {
	clk   *clock.Fake
	start time.Time

	mu          sync.Mutex
	burst       []soakFault // faults for the next requests, in order
	outageNext  bool        // the next request starts an outage
	outageUntil time.Time   // every request before this fails to connect
	met         int         // faults met so far (alternates who serves them)
	hangs       int         // real hangs left to serve (ended by the try timeout)
	injected    [soakFaultKinds]int
	perHour     [24]int
	faultHour   [24]bool // a fault was met in that hour
	inflight    int
}

func newSoakFaults(clk *clock.Fake) *soakFaults {
	return &soakFaults{clk: clk, start: clk.Now(), hangs: 1}
}

// meet counts one request (or tool run) and returns the fault it meets, and
// whether the endpoint itself may serve it.
func (f *soakFaults) meet() (k soakFault, byServer, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clk.Now()
	hour := int(now.Sub(f.start) / time.Hour)
	if hour >= 0 && hour < len(f.perHour) {
		f.perHour[hour]++
	}
	if f.outageNext {
		f.outageNext, f.outageUntil = false, now.Add(10*time.Minute)
	}
	if now.Before(f.outageUntil) {
		f.injected[soakOutage]++
		f.faultHour[hour] = true
		return soakOutage, false, true
	}
	if len(f.burst) == 0 {
		return 0, false, false
	}
	f.faultHour[hour] = true
	k, f.burst = f.burst[0], f.burst[1:]
	f.met++
	f.injected[k]++
	byServer = f.met%2 == 0
	if k == soakTimeout {
		byServer = f.hangs > 0
		if byServer {
			f.hangs--
		}
	}
	return k, byServer, true
}

// episode starts a fault episode: an outage of ten minutes from the next
// request on, or n faults of kind k for the next n requests. An episode of
// n == 0 ends the faults still waiting for a request: the endpoint is
// healthy again.
func (f *soakFaults) episode(k soakFault, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n == 0 {
		f.burst, f.outageNext = nil, false
		return
	}
	if k == soakOutage {
		f.outageNext = true
		return
	}
	for range n {
		f.burst = append(f.burst, k)
	}
}

func (f *soakFaults) begin() { f.mu.Lock(); f.inflight++; f.mu.Unlock() }
func (f *soakFaults) end()   { f.mu.Lock(); f.inflight--; f.mu.Unlock() }

// idle reports whether nothing is on the wire.
func (f *soakFaults) idle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inflight == 0
}

// soakDoer is the transport in front of an endpoint: it serves the faults
// that the endpoint does not, and passes the rest to the real loopback
// client.
type soakDoer struct {
	faults *soakFaults
	inner  Doer
	// server has the endpoint serve k to the next request; it reports
	// false when the endpoint cannot serve that kind.
	server func(k soakFault) bool
	// throttled alternates the Retry-After of the 429s it serves.
	throttled atomic.Int64
}

func (d *soakDoer) Do(r *http.Request) (*http.Response, error) {
	d.faults.begin()
	k, byServer, ok := d.faults.meet()
	if ok && byServer && d.server(k) {
		ok = false
	}
	var resp *http.Response
	var err error
	if ok {
		resp, err = soakAnswer(k, d.throttled.Add(1)%2 == 0, r)
	} else {
		resp, err = d.inner.Do(r)
	}
	if err != nil {
		d.faults.end()
		return nil, err
	}
	resp.Body = &soakBody{ReadCloser: resp.Body, done: d.faults.end}
	return resp, nil
}

// soakBody ends the request's time on the wire when it is closed.
type soakBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *soakBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}

// soakAnswer is what a client sees when its request meets fault k on the
// way; a 429 asks for a long wait (beyond the retry policy's limit) when
// long is set, else for one second.
func soakAnswer(k soakFault, long bool, r *http.Request) (*http.Response, error) {
	answer := func(status int, h http.Header, body []byte, declared int) *http.Response {
		if h == nil {
			h = http.Header{}
		}
		h.Set("Content-Type", "application/json; charset=utf-8")
		return &http.Response{
			Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), StatusCode: status,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h, Request: r,
			ContentLength: int64(declared), Body: io.NopCloser(io.MultiReader(bytes.NewReader(body), cutReader{declared > len(body)})),
		}
	}
	switch k {
	case soakTimeout:
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	case soakReset:
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	case soakOutage:
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	case soakThrottled:
		wait := "1"
		if long {
			wait = "3600"
		}
		body := []byte(`{"error":"temporarily_unavailable","error_description":"AADSTS50196: too many requests"}`)
		return answer(http.StatusTooManyRequests, http.Header{"Retry-After": {wait}}, body, len(body)), nil
	case soakServerError:
		body := []byte(`{"error":"temporarily_unavailable","error_description":"AADSTS90033: A transient error has occurred. Please try again."}`)
		return answer(http.StatusServiceUnavailable, nil, body, len(body)), nil
	case soakMalformed:
		body := []byte(`{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ0eXAi`)
		return answer(http.StatusOK, nil, body, len(body)), nil
	default: // soakTruncated
		full := `{"token_type":"Bearer","expires_in":3599,"expires_on":"1767225600","access_token":"truncated-token-value"}`
		return answer(http.StatusOK, nil, []byte(full[:len(full)/2]), len(full)), nil
	}
}

// cutReader ends a body early (the connection closed) when cut is set.
type cutReader struct{ cut bool }

func (c cutReader) Read([]byte) (int, error) {
	if c.cut {
		return 0, io.ErrUnexpectedEOF
	}
	return 0, io.EOF
}

// entraServerFault has the Entra emulator serve k itself.
func entraServerFault(e *emulator.Emulator) func(soakFault) bool {
	return func(k soakFault) bool {
		f := emulator.Fault{Path: "/oauth2/v2.0/token"}
		switch k {
		case soakTimeout:
			f.Hang = true
		case soakReset:
			f.Drop = true
		case soakThrottled:
			f.Status, f.Header, f.Body = http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}, []byte(`{"error":"throttled"}`)
		case soakServerError:
			f.Status, f.Body = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
		case soakMalformed:
			f.Malformed = true
		case soakTruncated:
			f.Truncated = true
		default:
			return false
		}
		e.InjectFault(f)
		return true
	}
}

// miServerFault has a managed-identity host serve k itself.
func miServerFault(h *emulator.MIHost) func(soakFault) bool {
	return func(k soakFault) bool {
		var f emulator.MIFault
		switch k {
		case soakTimeout:
			f.Hang = true
		case soakReset:
			f.Drop = true
		case soakThrottled:
			f.Status, f.Header, f.Body = http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}, []byte(`{"error":"throttled"}`)
		case soakServerError:
			f.Status, f.Body = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
		case soakMalformed:
			f.Status, f.Body = http.StatusOK, []byte(`{"access_token":"eyJ0","expires_on":`)
		default:
			return false
		}
		h.InjectFault(f)
		return true
	}
}

// soakTarget is one credential under soak.
type soakTarget struct {
	cred TokenCredential
	// engine returns the credential's cache engine (nil before the first call).
	engine func() *cache.Engine
	// expiry returns the issuer's own expiry of a token.
	expiry func(token string) (time.Time, bool)
	// tick runs before each batch of callers (a kubelet rotating a file).
	tick func(t *testing.T, now time.Time)
	// secrets must never appear in an error.
	secrets []string
	// tries is the most requests one fetch makes (the retry policy's).
	tries int
	// sameTokenFirst: the source hands back its own cached token until it
	// renews it, so a refresh may take two runs.
	sameTokenFirst bool
	// note, when set, adds to the run's figures.
	note func() string
}

type soakFamily struct {
	name  string
	start func(t *testing.T, clk *clock.Fake, life time.Duration, faults *soakFaults) soakTarget
}

// jwtExpiries remembers the "exp" of the tokens seen, so that each is
// decoded once.
var jwtExpiries sync.Map // token → time.Time

// jwtExpiry reads the "exp" claim the emulator signed.
func jwtExpiry(token string) (time.Time, bool) {
	if v, ok := jwtExpiries.Load(token); ok {
		return v.(time.Time), true
	}
	var c struct {
		Exp int64 `json:"exp"`
	}
	if err := jwtx.DecodeClaims(token, &c); err != nil || c.Exp == 0 {
		return time.Time{}, false
	}
	exp := time.Unix(c.Exp, 0)
	jwtExpiries.Store(token, exp)
	return exp, true
}

// soakLoopbackClient is a plain-http client for the managed-identity hosts.
func soakLoopbackClient(t *testing.T) *http.Client {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// soakSigningKey signs the soak's tokens: a 1024-bit key, the smallest Go
// accepts, because the emulator signs some thousands of tokens a run and
// nothing in the soak checks a signature.
var soakSigningKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(crand.Reader, 1024)
	if err != nil {
		panic(err)
	}
	return k
})

func soakEmulator(t *testing.T, clk *clock.Fake, life time.Duration) *emulator.Emulator {
	return emulator.NewT(t, &emulator.Options{Clock: clk, SigningKey: soakSigningKey(), TokenLifetime: life})
}

func soakManagedIdentity(start func(e *emulator.Emulator) (*emulator.MIHost, error)) func(*testing.T, *clock.Fake, time.Duration, *soakFaults) soakTarget {
	return func(t *testing.T, clk *clock.Fake, life time.Duration, faults *soakFaults) soakTarget {
		e := soakEmulator(t, clk, life)
		e.SetSystemAssignedIdentity(emulator.ManagedIdentity{})
		h, err := start(e)
		require.NoError(t, err)
		o := miOptions(t, h, nil)
		o.clock = clk
		o.Retry = soakRetry
		o.Transport = &soakDoer{faults: faults, inner: soakLoopbackClient(t), server: miServerFault(h)}
		c, err := NewManagedIdentityCredential(o)
		require.NoError(t, err)
		resource := strings.TrimSuffix(armScope, "/.default")
		return soakTarget{
			cred: c,
			engine: func() *cache.Engine {
				if ent := (*c.engines.m.Load())[resource]; ent != nil {
					return ent.engine
				}
				return nil
			},
			expiry:  jwtExpiry,
			secrets: []string{h.Secret()},
			tries:   7,
		}
	}
}

var soakFamilies = []soakFamily{
	{"ClientSecret", func(t *testing.T, clk *clock.Fake, life time.Duration, faults *soakFaults) soakTarget {
		e := soakEmulator(t, clk, life)
		require.NoError(t, e.RegisterApp(emulator.App{TenantID: testTenant, ClientID: testClient, Secrets: []string{testSecret}}))
		c, err := NewClientSecretCredential(testTenant, testClient, testSecret, &ClientSecretCredentialOptions{ClientOptions: ClientOptions{
			AuthorityHost: e.URL(), Transport: &soakDoer{faults: faults, inner: e.Client(), server: entraServerFault(e)},
			Retry: soakRetry, getenv: envMap(), clock: clk,
		}})
		require.NoError(t, err)
		return soakTarget{cred: c, engine: func() *cache.Engine { return c.client.engine }, expiry: jwtExpiry, secrets: []string{testSecret}, tries: 4}
	}},
	{"IMDS", soakManagedIdentity((*emulator.Emulator).StartIMDS)},
	{"AppService", soakManagedIdentity((*emulator.Emulator).StartAppService)},
	{"WorkloadIdentity", func(t *testing.T, clk *clock.Fake, life time.Duration, faults *soakFaults) soakTarget {
		e := soakEmulator(t, clk, life)
		k8s := emulator.NewKubernetesIssuerT(t, &emulator.KubernetesIssuerOptions{Clock: clk})
		file := emulator.NewProjectedTokenFile(t.TempDir())
		require.NoError(t, e.RegisterApp(emulator.App{TenantID: testTenant, ClientID: testClient, Federated: []emulator.FederatedCredential{k8s.FederatedCredential(wiNamespace, wiAccount)}}))
		var written time.Time
		rotate := func(t *testing.T, now time.Time) {
			// The kubelet renews the projected token well before its hour is up.
			if !written.IsZero() && now.Sub(written) < 30*time.Minute {
				return
			}
			tok, err := k8s.Mint(emulator.ServiceAccountToken{Namespace: wiNamespace, Name: wiAccount})
			require.NoError(t, err)
			require.NoError(t, file.Write(tok))
			written = now
		}
		rotate(t, clk.Now())
		c, err := NewWorkloadIdentityCredential(&WorkloadIdentityCredentialOptions{ClientOptions: ClientOptions{
			AuthorityHost: e.URL(), Transport: &soakDoer{faults: faults, inner: e.Client(), server: entraServerFault(e)},
			Retry: soakRetry, clock: clk,
			getenv: envMap("AZURE_CLIENT_ID", testClient, "AZURE_TENANT_ID", testTenant, "AZURE_FEDERATED_TOKEN_FILE", file.Path()),
		}})
		require.NoError(t, err)
		return soakTarget{cred: c, engine: func() *cache.Engine { return c.client.engine }, expiry: jwtExpiry, tick: rotate, tries: 4}
	}},
	{"AzureCLI", func(t *testing.T, clk *clock.Fake, life time.Duration, faults *soakFaults) soakTarget {
		az := &soakAz{clk: clk, life: life, faults: faults, expiries: map[string]time.Time{}}
		if runtime.GOOS != "windows" {
			// A share of the runs start a real process: a script that
			// prints the answer the fake wrote for it.
			dir := t.TempDir()
			az.answerPath = filepath.Join(dir, "answer.json")
			script := "#!/bin/sh\nexec cat '" + az.answerPath + "'\n"
			require.NoError(t, os.WriteFile(filepath.Join(dir, "az"), []byte(script), 0o700))
			az.real = exec.OS{Path: dir}
		}
		c, err := NewAzureCLICredential(&AzureCLICredentialOptions{devToolSeams: devToolSeams{runner: az, clock: clk, getenv: envMap()}})
		require.NoError(t, err)
		return soakTarget{cred: c, engine: func() *cache.Engine { return c.tool.engine }, expiry: az.expiry, tries: 1, sameTokenFirst: true,
			note: func() string { return fmt.Sprintf("; %d of the runs were real processes", az.realRuns.Load()) }}
	}},
}

// soakAz is a fake az: it keeps its own token and hands it back until less
// than 5 minutes are left, as az does, and fails as az does when it meets
// a fault. Every soakRealEvery-th healthy run goes through real, a script
// run by the OS runner that prints the answer soakAz wrote for it.
type soakAz struct {
	clk    *clock.Fake
	life   time.Duration
	faults *soakFaults

	real       exec.Runner // nil: no real share
	answerPath string
	runs       atomic.Int64
	realRuns   atomic.Int64

	mu       sync.Mutex
	n        int
	token    string
	exp      time.Time
	expiries map[string]time.Time
}

// soakRealEvery is how often a healthy az run is a real process.
const soakRealEvery = 8

func (a *soakAz) Run(ctx context.Context, c exec.Command) (exec.Result, error) {
	if c.Name != "az" {
		return exec.Result{}, fmt.Errorf("soak: unexpected command %q", c.Name)
	}
	k, _, faulty := a.faults.meet()
	fail := func(stderr string) (exec.Result, error) {
		return exec.Result{}, &exec.ExitError{Name: "az", Code: 1, Stderr: []byte(stderr)}
	}
	answer := a.answer()
	if faulty {
		switch k {
		case soakTimeout:
			return exec.Result{}, &exec.TimeoutError{Name: "az", Timeout: exec.DefaultTimeout}
		case soakReset:
			return fail("ERROR: ('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))\n")
		case soakThrottled:
			return fail("ERROR: AADSTS50196: The server terminated an operation because it encountered a client request loop.\n")
		case soakServerError:
			return fail("ERROR: AADSTS90033: A transient error has occurred. Please try again.\n")
		case soakMalformed:
			return exec.Result{Stdout: []byte("WARNING: this is not JSON\n{\"accessToken\":")}, nil
		case soakTruncated:
			return exec.Result{Stdout: answer[:len(answer)/2]}, nil
		default: // soakOutage
			return fail("ERROR: HTTPSConnectionPool(host='login.microsoftonline.com', port=443): Max retries exceeded with url: /organizations/oauth2/v2.0/token\n")
		}
	}
	if a.real != nil && a.runs.Add(1)%soakRealEvery == 0 {
		if err := os.WriteFile(a.answerPath, answer, 0o600); err != nil {
			return exec.Result{}, err
		}
		a.realRuns.Add(1)
		return a.real.Run(ctx, c)
	}
	return exec.Result{Stdout: answer}, nil
}

// answer renews the tool's token when needed and returns az's JSON for it.
func (a *soakAz) answer() []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.clk.Now()
	if a.token == "" || a.exp.Sub(now) < 5*time.Minute {
		a.n++
		a.token = "az-opaque-token-" + strconv.Itoa(a.n)
		a.exp = now.Add(a.life).Truncate(time.Second)
		a.expiries[a.token] = a.exp
	}
	b, err := json.Marshal(map[string]any{
		"accessToken": a.token,
		"expiresOn":   a.exp.Local().Format("2006-01-02 15:04:05.000000"),
		"expires_on":  a.exp.Unix(),
		"tenant":      testTenant,
		"tokenType":   "Bearer",
	})
	if err != nil {
		panic(err)
	}
	return b
}

func (a *soakAz) expiry(token string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.expiries[token]
	return exp, ok
}

// soakEpisode is one scheduled fault episode.
type soakEpisode struct {
	at   time.Time
	kind soakFault
	n    int
}

// soakSchedule plans the day: two episodes an hour at random minutes,
// kinds in turn so that each appears several times, except in two quiet
// hours out of every six, which begin by ending the faults still waiting.
func soakSchedule(rng *rand.Rand, start time.Time) []soakEpisode {
	var out []soakEpisode
	turn := 0
	for h := range int(soakDuration / time.Hour) {
		if h%6 == 4 {
			out = append(out, soakEpisode{at: start.Add(time.Duration(h) * time.Hour)})
		}
		if h%6 >= 4 {
			continue
		}
		a, b := rng.IntN(30), 30+rng.IntN(30)
		for _, m := range []int{a, b} {
			out = append(out, soakEpisode{
				at:   start.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(rng.IntN(60))*time.Second),
				kind: soakFault(turn % int(soakFaultKinds)),
				n:    1 + rng.IntN(5),
			})
			turn++
		}
	}
	return out
}

// soakResult is what one run saw.
type soakResult struct {
	calls, ok, cancelled, failedNoToken, failedWhileValid, expired, leaked int
	firstViolation                                                         string
}

// soakHarness drives one run.
type soakHarness struct {
	clk    *clock.Fake
	target soakTarget
	faults *soakFaults

	callers sync.WaitGroup
	cmu     sync.Mutex
	cancels []soakCancel

	mu        sync.Mutex
	bestUntil time.Time // the latest usable-until of the tokens handed out
	res       soakResult
}

type soakCancel struct {
	at     time.Time
	cancel context.CancelFunc
}

func (h *soakHarness) violation(format string, args ...any) {
	if h.res.firstViolation == "" {
		h.res.firstViolation = fmt.Sprintf(format, args...)
	}
}

// call is one caller.
func (h *soakHarness) call(ctx context.Context) {
	defer h.callers.Done()
	h.mu.Lock()
	before := h.bestUntil
	h.mu.Unlock()
	tok, err := h.target.cred.GetToken(ctx, armRequest)
	now := h.clk.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.res.calls++
	if err == nil {
		h.res.ok++
		exp, known := h.target.expiry(tok.Token)
		switch {
		case tok.Token == "" || !known:
			h.res.expired++
			h.violation("at %s: a token the issuer never issued", now.Format(time.TimeOnly))
		case !now.Before(exp) || !now.Before(tok.ExpiresOn):
			h.res.expired++
			h.violation("at %s: a token that expired at %s", now.Format(time.TimeOnly), exp.Format(time.TimeOnly))
		}
		if until := tok.ExpiresOn.Add(-soakMargin); until.After(h.bestUntil) {
			h.bestUntil = until
		}
		return
	}
	for _, s := range h.target.secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			h.res.leaked++
			h.violation("an error holds a secret")
		}
	}
	if now.Before(before) {
		// A token handed out before this call started is still usable:
		// whatever else happened, the cache should have answered.
		h.res.failedWhileValid++
		h.violation("at %s: failed while a token was usable until %s: %v", now.Format(time.TimeOnly), before.Format(time.TimeOnly), err)
		return
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		h.res.cancelled++
		return
	}
	h.res.failedNoToken++
}

// batch starts soakBatch callers; some give up before asking, some at once,
// some after a while of simulated time.
func (h *soakHarness) batch(rng *rand.Rand) {
	for range soakBatch {
		ctx, cancel := context.WithCancel(context.Background())
		h.callers.Add(1)
		switch rng.IntN(10) {
		case 0: // gave up before asking
			cancel()
			go h.call(ctx)
		case 1: // gives up right away, racing the call
			go h.call(ctx)
			cancel()
		case 2, 3: // gives up after a few simulated seconds
			h.cmu.Lock()
			h.cancels = append(h.cancels, soakCancel{at: h.clk.Now().Add(time.Duration(1+rng.IntN(20)) * time.Second), cancel: cancel})
			h.cmu.Unlock()
			go h.call(ctx)
		default:
			h.cmu.Lock()
			h.cancels = append(h.cancels, soakCancel{at: h.clk.Now().Add(time.Hour), cancel: cancel})
			h.cmu.Unlock()
			go h.call(ctx)
		}
	}
}

// cancelDue cancels the callers whose patience ran out; all, when all is set.
func (h *soakHarness) cancelDue(all bool) {
	now := h.clk.Now()
	h.cmu.Lock()
	defer h.cmu.Unlock()
	kept := h.cancels[:0]
	for _, c := range h.cancels {
		if all || !now.Before(c.at) {
			c.cancel()
			continue
		}
		kept = append(kept, c)
	}
	h.cancels = kept
}

// settle waits until the callers have returned and no fetch runs. While a
// fetch sleeps (a backoff on the fake clock) and nothing is on the wire,
// it moves the clock a second at a time until the fetch wakes.
func (h *soakHarness) settle() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.callers.Wait()
		if e := h.target.engine(); e != nil {
			e.Wait()
		}
	}()
	for {
		// Sleep until the callers are done or someone waits on the clock.
		ctx, cancel := context.WithCancel(context.Background())
		waiting := make(chan struct{})
		go func() {
			if h.clk.BlockUntilTimers(ctx, 1) == nil {
				close(waiting)
			}
		}()
		select {
		case <-done:
			cancel()
			h.cancelDue(true)
			return
		case <-waiting:
			cancel()
		}
		// The only timers are the backoff of the one fetch of the
		// credential's one key: step until it fires, which removes it.
		for h.clk.Timers() > 0 {
			if !h.faults.idle() {
				runtime.Gosched()
				continue
			}
			h.clk.Advance(time.Second)
			h.cancelDue(false)
		}
	}
}

func runSoak(t *testing.T, fam soakFamily, life time.Duration, seed uint64) {
	clk := clock.NewFake(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	faults := newSoakFaults(clk)
	h := &soakHarness{clk: clk, faults: faults, target: fam.start(t, clk, life, faults)}
	rng := rand.New(rand.NewPCG(seed, uint64(life)))
	start := clk.Now()
	end := start.Add(soakDuration)
	schedule := soakSchedule(rng, start)
	began := time.Now()
	next := start
	for clk.Now().Before(end) {
		now := clk.Now()
		for len(schedule) > 0 && !schedule[0].at.After(now) {
			faults.episode(schedule[0].kind, schedule[0].n)
			schedule = schedule[1:]
		}
		if !now.Before(next) {
			if h.target.tick != nil {
				h.target.tick(t, now)
			}
			h.batch(rng)
			for !next.After(now) {
				next = next.Add(soakCallEvery)
			}
		}
		h.settle()
		to := next
		if len(schedule) > 0 && schedule[0].at.Before(to) {
			to = schedule[0].at
		}
		if to.After(clk.Now()) {
			clk.Set(to)
		}
	}
	wall := time.Since(began)

	// Requests per hour: in a quiet hour, one refresh per refresh interval
	// (lifetime minus min(5 min, half of it), less up to 5% jitter), two
	// when the tool hands back its held token first; in any hour, at most
	// one fetch per batch of callers (they share it) times the tries of one
	// fetch.
	interval := time.Duration(float64(life-min(5*time.Minute, life/2)) * 0.95)
	quietBound := int((time.Hour+interval-1)/interval) + 1
	if h.target.sameTokenFirst {
		quietBound *= 2
	}
	anyBound := int(time.Hour/soakCallEvery) * h.target.tries
	total, maxAny, maxQuiet := 0, 0, 0
	quiet := 0
	for hr, n := range faults.perHour {
		total += n
		maxAny = max(maxAny, n)
		// Quiet: no fault met in this hour or the one before, so no
		// recovery either.
		if !faults.faultHour[hr] && hr > 0 && !faults.faultHour[hr-1] {
			quiet++
			maxQuiet = max(maxQuiet, n)
		}
	}
	r := h.res
	var injected []string
	for k, n := range faults.injected {
		injected = append(injected, fmt.Sprintf("%s=%d", soakFaultNames[k], n))
	}
	t.Logf("soak %s token %v: %v simulated in %v: %d GetToken: %d ok, %d cancelled, %d failed with no usable token, %d failed while a valid token existed; %d expired tokens handed out; %d secrets in errors",
		fam.name, life, soakDuration, wall.Round(time.Millisecond), r.calls, r.ok, r.cancelled, r.failedNoToken, r.failedWhileValid, r.expired, r.leaked)
	note := ""
	if h.target.note != nil {
		note = h.target.note()
	}
	t.Logf("soak %s token %v: %d requests, max %d/h (bound %d), %d quiet hours max %d/h (bound %d); faults met: %s%s",
		fam.name, life, total, maxAny, anyBound, quiet, maxQuiet, quietBound, strings.Join(injected, " "), note)

	assert.Zero(t, r.failedWhileValid, "failed GetToken while a valid token existed; first: %s", r.firstViolation)
	assert.Zero(t, r.expired, "expired tokens handed out; first: %s", r.firstViolation)
	assert.Zero(t, r.leaked, "secrets in errors")
	assert.LessOrEqual(t, maxAny, anyBound, "requests in one hour")
	assert.LessOrEqual(t, maxQuiet, quietBound, "requests in a quiet hour")
	assert.Positive(t, maxQuiet, "quiet hours still refresh")
	assert.Greater(t, r.ok, r.calls*9/10, "most calls get a token")
	for k, n := range faults.injected {
		assert.Positive(t, n, "fault %s was met", soakFaultNames[k])
	}
}

// TestSoak runs every source family through a day of faults. It does not
// run in parallel with the package's other tests, so that it can check
// that it leaves no goroutine behind.
func TestSoak(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	// The runs wait mostly on loopback round trips, not on the CPU: they
	// all run at once, whatever -parallel says (t.Run may be called from
	// several goroutines).
	var wg sync.WaitGroup
	for i, fam := range soakFamilies {
		for _, life := range []time.Duration{time.Hour, 10 * time.Minute} {
			wg.Go(func() {
				t.Run(fmt.Sprintf("%s/%v", fam.name, life), func(t *testing.T) {
					runSoak(t, fam, life, uint64(i+1))
				})
			})
		}
	}
	wg.Wait()
	err := goleak.Find(ignore,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"))
	left := 0
	if err != nil {
		left = strings.Count(err.Error(), "Goroutine ")
	}
	t.Logf("soak: goroutines left after all runs: %d", left)
	assert.NoError(t, err)
}
