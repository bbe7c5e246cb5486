package httpx

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/azcred/azcred/internal/clock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// script answers the n-th request (0-based) with steps[n], repeating the last
// step, and records what it received.
type script struct {
	mu    sync.Mutex
	steps []func(w http.ResponseWriter, r *http.Request)
	seen  []seenRequest
}

type seenRequest struct {
	Method string
	Header http.Header
	Body   string
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	n := len(s.seen)
	s.seen = append(s.seen, seenRequest{Method: r.Method, Header: r.Header.Clone(), Body: string(body)})
	step := s.steps[min(n, len(s.steps)-1)]
	s.mu.Unlock()
	step(w, r)
}

func (s *script) requests() []seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seenRequest(nil), s.seen...)
}

func status(code int, headers ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, `{"status":`+http.StatusText(code)+`}`)
	}
}

func drop(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

// newTestClient returns a client on a fake clock with jitter fixed at 1.
func newTestClient(srv *httptest.Server, o Options) (*Client, *clock.Fake) {
	fake := clock.NewFake(epoch)
	o.Clock = fake
	if o.Transport == nil {
		o.Transport = srv.Client()
	}
	c := New(o)
	c.jitter = func() float64 { return 1 }
	return c, fake
}

// doAdvancing runs c.Do and, for each expected wait, checks that the client
// waits exactly that long on the fake clock before its next try.
func doAdvancing(t *testing.T, c *Client, fake *clock.Fake, req *Request, waits []time.Duration) (*Response, error) {
	t.Helper()
	type result struct {
		resp *Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := c.Do(context.Background(), req)
		done <- result{resp, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, w := range waits {
		require.NoError(t, fake.BlockUntilTimers(ctx, 1), "wait %d never started", i)
		fake.Advance(w - time.Millisecond)
		assert.Equal(t, 1, fake.Timers(), "wait %d ended before %s", i, w)
		fake.Advance(time.Millisecond)
	}
	select {
	case r := <-done:
		assert.Equal(t, 0, fake.Timers(), "the client is still waiting")
		return r.resp, r.err
	case <-ctx.Done():
		t.Fatal("Do did not return")
		return nil, nil
	}
}

func TestDoRetryTable(t *testing.T) {
	t.Parallel()
	httpDate := epoch.Add(5 * time.Second).Format(http.TimeFormat)
	cases := []struct {
		name       string
		steps      []func(http.ResponseWriter, *http.Request)
		retry      Policy
		extra      []int
		waits      []time.Duration
		wantStatus int
		wantTries  int
		wantErr    func(t *testing.T, err error)
	}{
		{
			name:       "429 with Retry-After seconds is retried after that wait",
			steps:      []func(http.ResponseWriter, *http.Request){status(429, "Retry-After", "2"), status(200)},
			waits:      []time.Duration{2 * time.Second},
			wantStatus: 200, wantTries: 2,
		},
		{
			name:       "Retry-After as an HTTP date",
			steps:      []func(http.ResponseWriter, *http.Request){status(503, "Retry-After", httpDate), status(200)},
			waits:      []time.Duration{5 * time.Second},
			wantStatus: 200, wantTries: 2,
		},
		{
			name:       "retry-after-ms wins over Retry-After",
			steps:      []func(http.ResponseWriter, *http.Request){status(429, "retry-after-ms", "1500", "Retry-After", "30"), status(200)},
			waits:      []time.Duration{1500 * time.Millisecond},
			wantStatus: 200, wantTries: 2,
		},
		{
			name:       "x-ms-retry-after-ms",
			steps:      []func(http.ResponseWriter, *http.Request){status(429, "x-ms-retry-after-ms", "250"), status(200)},
			waits:      []time.Duration{250 * time.Millisecond},
			wantStatus: 200, wantTries: 2,
		},
		{
			name:       "503 is retried with exponential backoff",
			steps:      []func(http.ResponseWriter, *http.Request){status(503), status(503), status(503), status(200)},
			waits:      []time.Duration{800 * time.Millisecond, 2400 * time.Millisecond, 5600 * time.Millisecond},
			wantStatus: 200, wantTries: 4,
		},
		{
			name:       "408 and 500 are retried",
			steps:      []func(http.ResponseWriter, *http.Request){status(408), status(500), status(204)},
			waits:      []time.Duration{800 * time.Millisecond, 2400 * time.Millisecond},
			wantStatus: 204, wantTries: 3,
		},
		{
			name:       "backoff is capped at MaxRetryDelay",
			retry:      Policy{RetryDelay: time.Second, MaxRetryDelay: 2 * time.Second},
			steps:      []func(http.ResponseWriter, *http.Request){status(502), status(502), status(200)},
			waits:      []time.Duration{time.Second, 2 * time.Second},
			wantStatus: 200, wantTries: 3,
		},
		{
			name:       "a dropped connection is retried",
			steps:      []func(http.ResponseWriter, *http.Request){drop, status(200)},
			waits:      []time.Duration{800 * time.Millisecond},
			wantStatus: 200, wantTries: 2,
		},
		{
			name:       "an extra status of the source is retried",
			extra:      []int{404},
			steps:      []func(http.ResponseWriter, *http.Request){status(404), status(200)},
			waits:      []time.Duration{800 * time.Millisecond},
			wantStatus: 200, wantTries: 2,
		},
		{
			name:       "400 is not retried",
			steps:      []func(http.ResponseWriter, *http.Request){status(400), status(200)},
			wantStatus: 400, wantTries: 1,
		},
		{
			name:       "401 is not retried",
			steps:      []func(http.ResponseWriter, *http.Request){status(401, "Retry-After", "1"), status(200)},
			wantStatus: 401, wantTries: 1,
		},
		{
			name:       "403 is not retried",
			steps:      []func(http.ResponseWriter, *http.Request){status(403), status(200)},
			wantStatus: 403, wantTries: 1,
		},
		{
			name:       "404 is not retried by default",
			steps:      []func(http.ResponseWriter, *http.Request){status(404), status(200)},
			wantStatus: 404, wantTries: 1,
		},
		{
			name:       "501 is not retried",
			steps:      []func(http.ResponseWriter, *http.Request){status(501), status(200)},
			wantStatus: 501, wantTries: 1,
		},
		{
			name:       "MaxRetries -1 makes one try",
			retry:      Policy{MaxRetries: -1},
			steps:      []func(http.ResponseWriter, *http.Request){status(503), status(200)},
			wantStatus: 503, wantTries: 1,
		},
		{
			name:       "the last response is returned when the tries are spent",
			retry:      Policy{MaxRetries: 2},
			steps:      []func(http.ResponseWriter, *http.Request){status(500)},
			waits:      []time.Duration{800 * time.Millisecond, 2400 * time.Millisecond},
			wantStatus: 500, wantTries: 3,
		},
		{
			name:      "Retry-After longer than MaxRetryDelay gives up at once",
			steps:     []func(http.ResponseWriter, *http.Request){status(429, "Retry-After", "3600"), status(200)},
			wantTries: 1,
			wantErr: func(t *testing.T, err error) {
				var tooLong *RetryAfterTooLongError
				require.ErrorAs(t, err, &tooLong)
				assert.Equal(t, time.Hour, tooLong.Wait)
				assert.Equal(t, time.Minute, tooLong.Limit)
				assert.Equal(t, 429, tooLong.Response.StatusCode)
				assert.Contains(t, err.Error(), "asked to wait 1h0m0s")
				assert.Contains(t, err.Error(), "RetryOptions.MaxRetryDelay (1m0s)")
			},
		},
		{
			name:      "dropped connections until the tries are spent",
			retry:     Policy{MaxRetries: 1},
			steps:     []func(http.ResponseWriter, *http.Request){drop},
			waits:     []time.Duration{800 * time.Millisecond},
			wantTries: 2,
			wantErr: func(t *testing.T, err error) {
				var re *RequestError
				require.ErrorAs(t, err, &re)
				assert.Equal(t, 2, re.Tries)
				assert.Contains(t, err.Error(), "failed after 2 tries")
				assert.Contains(t, err.Error(), "/tenant/token failed after 2 tries: the server closed the connection", "names the URL without query")
				assert.NotContains(t, err.Error(), "secret=")
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &script{steps: tc.steps}
			srv := httptest.NewServer(s)
			defer srv.Close()
			c, fake := newTestClient(srv, Options{Retry: tc.retry, RetryStatuses: tc.extra})
			req := &Request{
				Method: http.MethodPost,
				URL:    srv.URL + "/tenant/token?secret=hunter2",
				Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
				Body:   []byte("grant_type=client_credentials&client_secret=s3cr3t"),
			}
			resp, err := doAdvancing(t, c, fake, req, tc.waits)
			seen := s.requests()
			assert.Len(t, seen, tc.wantTries, "requests that reached the server")
			for _, r := range seen {
				assert.Equal(t, string(req.Body), r.Body, "every try sends the whole body")
			}
			if tc.wantErr != nil {
				require.Error(t, err)
				tc.wantErr(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantStatus, resp.StatusCode)
			assert.Equal(t, tc.wantTries, resp.Tries)
		})
	}
}

func TestDoSendsUserAgentAndOneClientRequestID(t *testing.T) {
	t.Parallel()
	s := &script{steps: []func(http.ResponseWriter, *http.Request){status(503), status(200)}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c, fake := newTestClient(srv, Options{})
	resp, err := doAdvancing(t, c, fake, &Request{URL: srv.URL, Header: http.Header{"X-Custom": {"v"}}}, []time.Duration{800 * time.Millisecond})
	require.NoError(t, err)
	seen := s.requests()
	require.Len(t, seen, 2)
	id := seen[0].Header.Get("client-request-id")
	assert.Len(t, id, 36, "a UUID")
	for _, r := range seen {
		assert.Equal(t, http.MethodGet, r.Method)
		assert.Regexp(t, `^azcred/0\.1\.0 \([a-z0-9]+/[a-z0-9]+\)$`, r.Header.Get("User-Agent"))
		assert.Equal(t, id, r.Header.Get("client-request-id"), "retries of one request share its id")
		assert.Equal(t, "true", r.Header.Get("return-client-request-id"))
		assert.Equal(t, "v", r.Header.Get("X-Custom"))
	}
	assert.Equal(t, id, resp.ClientRequestID)

	_, err = c.Do(context.Background(), &Request{URL: srv.URL})
	require.NoError(t, err)
	seen = s.requests()
	require.Len(t, seen, 3)
	assert.NotEqual(t, id, seen[2].Header.Get("client-request-id"), "each request gets a fresh id")
}

func TestDoRefusesOversizedBodies(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", DefaultMaxBodySize+1)
	cases := []struct {
		name    string
		handler http.HandlerFunc
		limit   int64
	}{
		{"declared length over 1 MiB", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, big) }, 0},
		{"chunked body over 1 MiB", func(w http.ResponseWriter, _ *http.Request) {
			for i := 0; i < 17; i++ {
				_, _ = io.WriteString(w, big[:64<<10])
				http.NewResponseController(w).Flush()
			}
		}, 0},
		{"per-request limit", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "0123456789") }, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				tc.handler(w, r)
			}))
			defer srv.Close()
			c, _ := newTestClient(srv, Options{})
			_, err := c.Do(context.Background(), &Request{URL: srv.URL + "/x?q=1", MaxBodySize: tc.limit})
			var tooLarge *BodyTooLargeError
			require.ErrorAs(t, err, &tooLarge)
			want := tc.limit
			if want == 0 {
				want = DefaultMaxBodySize
			}
			assert.Equal(t, want, tooLarge.Limit)
			assert.Equal(t, srv.URL+"/x", tooLarge.URL)
			assert.Contains(t, err.Error(), "larger than the")
			assert.Equal(t, int32(1), hits.Load(), "not retried")
		})
	}
	t.Run("exactly the limit is fine", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "12345") }))
		defer srv.Close()
		c, _ := newTestClient(srv, Options{MaxBodySize: 5})
		resp, err := c.Do(context.Background(), &Request{URL: srv.URL})
		require.NoError(t, err)
		assert.Equal(t, "12345", string(resp.Body))
	})
}

func TestDoRefusesRedirects(t *testing.T) {
	t.Parallel()
	var reached atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached.Add(1) }))
	defer other.Close()
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			t.Parallel()
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				http.Redirect(w, r, other.URL+"/steal?code=abc", code)
			}))
			defer srv.Close()
			for _, transport := range []Doer{srv.Client(), &http.Client{Transport: srv.Client().Transport}} {
				c, _ := newTestClient(srv, Options{Transport: transport})
				_, err := c.Do(context.Background(), &Request{Method: http.MethodPost, URL: srv.URL + "/t/oauth2/v2.0/token", Body: []byte("client_secret=x")})
				var re *RedirectError
				require.ErrorAs(t, err, &re)
				assert.Equal(t, code, re.StatusCode)
				assert.Equal(t, strings.TrimPrefix(other.URL, "http://"), re.LocationHost)
				assert.Contains(t, err.Error(), "does not follow redirects")
				assert.NotContains(t, err.Error(), "steal", "no path or query of the Location")
			}
			assert.Equal(t, int32(2), hits.Load(), "not retried")
		})
	}
	assert.Equal(t, int32(0), reached.Load(), "nothing reached the second server")
}

// plainDoer is a Doer that is not an *http.Client and follows redirects.
type plainDoer struct{ c *http.Client }

func (d plainDoer) Do(r *http.Request) (*http.Response, error) { return d.c.Do(r) }

func TestDoRefusesRedirectsOfACustomDoerThatStopsAtThem(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "/elsewhere")
		w.WriteHeader(http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	hc := &http.Client{Transport: srv.Client().Transport, CheckRedirect: refuseRedirect}
	c, _ := newTestClient(srv, Options{Transport: plainDoer{hc}})
	_, err := c.Do(context.Background(), &Request{URL: srv.URL})
	var re *RedirectError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "", re.LocationHost, "a relative Location names no host")
	assert.Contains(t, err.Error(), "307 Temporary Redirect")
}

func TestDoStopsWhenTheContextEnds(t *testing.T) {
	t.Parallel()
	s := &script{steps: []func(http.ResponseWriter, *http.Request){status(503)}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c, fake := newTestClient(srv, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Do(ctx, &Request{URL: srv.URL})
		done <- err
	}()
	require.NoError(t, fake.BlockUntilTimers(context.Background(), 1))
	cancel()
	err := <-done
	assert.ErrorIs(t, err, context.Canceled)
	var re *RequestError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 1, re.Tries)
	assert.Len(t, s.requests(), 1)
	assert.Equal(t, 0, fake.Timers())
}

func TestDoBoundsEachTry(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			<-r.Context().Done() // hang until the client gives up on this try
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	c, fake := newTestClient(srv, Options{Retry: Policy{TryTimeout: 50 * time.Millisecond}})
	resp, err := doAdvancing(t, c, fake, &Request{URL: srv.URL}, []time.Duration{800 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, "ok", string(resp.Body))
	assert.Equal(t, 2, resp.Tries)
}

func TestDoBoundsEachTryUnderALongerContextDeadline(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // hang until the client gives up
	}))
	defer srv.Close()
	c, _ := newTestClient(srv, Options{Retry: Policy{MaxRetries: -1, TryTimeout: 50 * time.Millisecond}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_, err := c.Do(ctx, &Request{URL: srv.URL})
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "the try's own bound ended it, not the hour-long deadline")
}

func TestDoDoesNotRetryCertificateFailures(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c, _ := newTestClient(srv, Options{Transport: &http.Client{Transport: tr}})
	_, err := c.Do(context.Background(), &Request{URL: srv.URL})
	var re *RequestError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 1, re.Tries)
	assert.Contains(t, err.Error(), "certificate")
	assert.Equal(t, int32(0), hits.Load())
}

func TestDoRejectsBadURLs(t *testing.T) {
	t.Parallel()
	c := New(Options{Transport: plainDoer{}})
	for _, u := range []string{"", "ftp://host/x", "/relative", "https://", "://bad"} {
		_, err := c.Do(context.Background(), &Request{URL: u})
		assert.ErrorContains(t, err, "absolute http or https URL", u)
	}
}

func TestDoLogsNoSecrets(t *testing.T) {
	t.Parallel()
	s := &script{steps: []func(http.ResponseWriter, *http.Request){status(503), status(200)}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, fake := newTestClient(srv, Options{Logger: logger})
	resp, err := doAdvancing(t, c, fake, &Request{
		Method: http.MethodPost,
		URL:    srv.URL + "/path?sig=QUERYSECRET",
		Header: http.Header{"Authorization": {"Bearer HEADERSECRET"}, "Secret": {"SFSECRET"}, "X-Identity-Header": {"IDSECRET"}},
		Body:   []byte("client_secret=BODYSECRET"),
	}, []time.Duration{800 * time.Millisecond})
	require.NoError(t, err)
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, secret := range []string{"QUERYSECRET", "HEADERSECRET", "SFSECRET", "IDSECRET", "BODYSECRET"} {
		assert.NotContains(t, out, secret)
	}
	assert.Contains(t, out, "url="+srv.URL+"/path")
	assert.Contains(t, out, "status=503")
	assert.Contains(t, out, "status=200")
	assert.Contains(t, out, "try=2")
	assert.Contains(t, out, "delay=800ms")
	assert.Contains(t, out, "client_request_id="+resp.ClientRequestID)
	assert.Equal(t, 3, strings.Count(out, "\n"), "two tries and one retry")
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := epoch
	cases := []struct {
		name   string
		header http.Header
		want   time.Duration
		ok     bool
	}{
		{"none", http.Header{}, 0, false},
		{"seconds", http.Header{"Retry-After": {"2"}}, 2 * time.Second, true},
		{"seconds with spaces", http.Header{"Retry-After": {" 7 "}}, 7 * time.Second, true},
		{"zero seconds", http.Header{"Retry-After": {"0"}}, 0, false},
		{"negative", http.Header{"Retry-After": {"-3"}}, 0, false},
		{"garbage", http.Header{"Retry-After": {"soon"}}, 0, false},
		{"fraction", http.Header{"Retry-After": {"1.5"}}, 0, false},
		{"huge saturates", http.Header{"Retry-After": {"99999999999999999"}}, time.Duration(1<<63 - 1), true},
		{"date", http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second, true},
		{"past date", http.Header{"Retry-After": {now.Add(-time.Hour).Format(http.TimeFormat)}}, 0, false},
		{"ms", http.Header{"Retry-After-Ms": {"120"}}, 120 * time.Millisecond, true},
		{"x-ms ms", http.Header{"X-Ms-Retry-After-Ms": {"30"}}, 30 * time.Millisecond, true},
		{"ms before x-ms", http.Header{"Retry-After-Ms": {"10"}, "X-Ms-Retry-After-Ms": {"20"}}, 10 * time.Millisecond, true},
		{"bad ms falls back", http.Header{"Retry-After-Ms": {"x"}, "Retry-After": {"3"}}, 3 * time.Second, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := retryAfter(tc.header, now)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestRetryAfterTooLongErrorNamesTheOption(t *testing.T) {
	t.Parallel()
	err := &RetryAfterTooLongError{Method: "POST", URL: "https://h/p", Wait: 2 * time.Minute, Limit: time.Minute, Tries: 1, Response: &Response{StatusCode: 429}}
	assert.Equal(t, "POST https://h/p answered 429 Too Many Requests and asked to wait 2m0s before retrying, longer than RetryOptions.MaxRetryDelay (1m0s); gave up after 1 try: try again later, or raise RetryOptions.MaxRetryDelay", err.Error())
	var target *RetryAfterTooLongError
	assert.True(t, errors.As(error(err), &target))
}
