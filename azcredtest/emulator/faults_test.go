package emulator

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// arrivals reports the path of every request the emulator records.
func arrivals(e *Emulator) <-chan string {
	ch := make(chan string, 64)
	e.mu.Lock()
	e.onRequest = func(p string) { ch <- p }
	e.mu.Unlock()
	return ch
}

// rawPost posts a valid client-credentials request and returns the raw
// response, or the transport's error.
func rawPost(ctx context.Context, e *Emulator) (*http.Response, []byte, error) {
	form := secretForm(secretApp, theSecret, armScope)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL()+tokenPath(tenantA), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := e.Client().Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func TestFaultStatusHeaderBodyForCountRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.e.InjectFault(Fault{
		Path:   "/oauth2/v2.0/token",
		Count:  2,
		Status: http.StatusTooManyRequests,
		Header: http.Header{"Retry-After": {"7"}},
		Body:   []byte(`{"error":"temporarily_unavailable"}`),
	})
	cfg := get(t, f.e, "/"+tenantA+"/v2.0/.well-known/openid-configuration")
	assert.Equal(t, http.StatusOK, cfg.status, "another path is not affected")
	for i := range 2 {
		r := post(t, f.e, tokenPath(tenantA), secretForm(secretApp, theSecret, armScope), nil)
		assert.Equal(t, http.StatusTooManyRequests, r.status, "request %d", i)
		assert.Equal(t, "7", r.header.Get("Retry-After"))
		assert.Equal(t, "temporarily_unavailable", r.str("error"))
	}
	r := post(t, f.e, tokenPath(tenantA), secretForm(secretApp, theSecret, armScope), nil)
	assert.Equal(t, http.StatusOK, r.status, "the fault is used up")

	var statuses []int
	for _, q := range f.e.Requests() {
		statuses = append(statuses, q.Status)
	}
	assert.Equal(t, []int{200, 429, 429, 200}, statuses)
}

func TestFaultCountDefaultsToOneAndClearFaults(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.e.InjectFault(Fault{Status: http.StatusServiceUnavailable})
	resp, _, err := rawPost(context.Background(), f.e)
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	resp, _, err = rawPost(context.Background(), f.e)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	f.e.InjectFault(Fault{Status: http.StatusInternalServerError, Count: 5})
	f.e.ClearFaults()
	resp, _, err = rawPost(context.Background(), f.e)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestFaultBodies(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tests := []struct {
		name  string
		fault Fault
		check func(t *testing.T, resp *http.Response, body []byte, err error)
	}{
		{"malformed", Fault{Malformed: true}, func(t *testing.T, resp *http.Response, body []byte, err error) {
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			var v map[string]any
			assert.Error(t, json.Unmarshal(body, &v))
		}},
		{"oversized", Fault{Oversized: true, Status: http.StatusBadRequest}, func(t *testing.T, resp *http.Response, body []byte, err error) {
			require.NoError(t, err)
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			assert.Len(t, body, OversizedBodySize)
			var v map[string]any
			assert.NoError(t, json.Unmarshal(body, &v), "an oversized body is still valid JSON")
		}},
		{"truncated", Fault{Truncated: true}, func(t *testing.T, resp *http.Response, _ []byte, err error) {
			require.NotNil(t, resp, "headers arrive")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
		}},
		{"dropped", Fault{Drop: true}, func(t *testing.T, resp *http.Response, _ []byte, err error) {
			assert.Nil(t, resp)
			assert.Error(t, err)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Not parallel: faults apply to the next requests of the emulator.
			f.e.InjectFault(tt.fault)
			resp, body, err := rawPost(context.Background(), f.e)
			tt.check(t, resp, body, err)
		})
	}
	last := f.e.Requests()
	require.Len(t, last, len(tests))
	assert.Equal(t, 0, last[len(last)-1].Status, "a dropped connection has no status")
	resp, _, err := rawPost(context.Background(), f.e)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the emulator serves normally after the faults")
}

func TestFaultDelayThenServe(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	const d = 30 * time.Millisecond
	f.e.InjectFault(Fault{Delay: d})
	start := time.Now()
	resp, _, err := rawPost(context.Background(), f.e)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.GreaterOrEqual(t, time.Since(start), d)
}

func TestFaultHangEndsWhenClientGivesUp(t *testing.T) {
	t.Parallel()
	for _, fault := range []Fault{{Hang: true}, {Delay: time.Hour}} {
		f := newFixture(t, nil)
		arrived := arrivals(f.e)
		f.e.InjectFault(fault)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, _, err := rawPost(ctx, f.e)
			errc <- err
		}()
		<-arrived
		cancel()
		assert.ErrorIs(t, <-errc, context.Canceled)
		resp, _, err := rawPost(context.Background(), f.e)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	}
}

func TestFaultHangEndsOnClose(t *testing.T) {
	t.Parallel()
	for _, fault := range []Fault{{Hang: true}, {Delay: time.Hour}} {
		e, err := New(nil)
		require.NoError(t, err)
		require.NoError(t, e.RegisterApp(App{TenantID: tenantA, ClientID: secretApp, Secrets: []string{theSecret}}))
		arrived := arrivals(e)
		e.InjectFault(fault)
		errc := make(chan error, 1)
		go func() {
			_, _, err := rawPost(context.Background(), e)
			errc <- err
		}()
		<-arrived
		closed := make(chan error, 1)
		go func() { closed <- e.Close() }()
		select {
		case err := <-closed:
			assert.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("Close did not end a held request")
		}
		assert.Error(t, <-errc, "the held request fails when the emulator closes")
	}
}

func TestFaultPathSuffix(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.e.InjectFault(Fault{Path: "/discovery/v2.0/keys", Status: http.StatusBadGateway, Body: []byte(`{}`)})
	resp, _, err := rawPost(context.Background(), f.e)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the token endpoint is not affected")
	r := get(t, f.e, "/"+tenantA+"/discovery/v2.0/keys")
	assert.Equal(t, http.StatusBadGateway, r.status)
}
