package httpx

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPolicyWithDefaults(t *testing.T) {
	t.Parallel()
	imds := Policy{MaxRetries: 6, RetryDelay: 2 * time.Second, MaxRetryDelay: 25 * time.Second, TryTimeout: time.Minute}
	cases := []struct {
		name           string
		p, defaults    Policy
		want           Policy
		wantTries      int
		wantMaxDelayed time.Duration
	}{
		{"zero takes Entra defaults", Policy{}, Policy{}, EntraDefaults, 4, time.Minute},
		{"zero takes the source's", Policy{}, imds, imds, 7, 25 * time.Second},
		{"caller's fields win", Policy{MaxRetries: 1, RetryDelay: time.Second}, imds,
			Policy{MaxRetries: 1, RetryDelay: time.Second, MaxRetryDelay: 25 * time.Second, TryTimeout: time.Minute}, 2, 25 * time.Second},
		{"partial source defaults fall back to Entra's", Policy{}, Policy{MaxRetries: 5},
			Policy{MaxRetries: 5, RetryDelay: 800 * time.Millisecond, MaxRetryDelay: time.Minute, TryTimeout: 30 * time.Second}, 6, time.Minute},
		{"-1 means no retries", Policy{MaxRetries: -1}, imds,
			Policy{MaxRetries: -1, RetryDelay: 2 * time.Second, MaxRetryDelay: 25 * time.Second, TryTimeout: time.Minute}, 1, 25 * time.Second},
		{"negative max delay means no cap", Policy{MaxRetryDelay: -1}, Policy{},
			Policy{MaxRetries: 3, RetryDelay: 800 * time.Millisecond, MaxRetryDelay: -1, TryTimeout: 30 * time.Second}, 4, time.Duration(1<<63 - 1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := tc.p.WithDefaults(tc.defaults)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.wantTries, got.tries())
			assert.Equal(t, tc.wantMaxDelayed, got.maxDelay())
		})
	}
}

func TestPolicyBackoff(t *testing.T) {
	t.Parallel()
	p := EntraDefaults
	assert.Equal(t, 800*time.Millisecond, p.backoff(1, 1))
	assert.Equal(t, 2400*time.Millisecond, p.backoff(2, 1))
	assert.Equal(t, 5600*time.Millisecond, p.backoff(3, 1))
	assert.Equal(t, 640*time.Millisecond, p.backoff(1, 0.8))
	assert.Equal(t, 1040*time.Millisecond, p.backoff(1, 1.3))
	assert.Equal(t, time.Minute, p.backoff(10, 1), "capped")
	assert.Equal(t, time.Minute, p.backoff(200, 1), "no overflow")
	assert.Equal(t, time.Duration(0), Policy{RetryDelay: -1}.backoff(3, 1))

	c := New(Options{})
	for range 100 {
		j := c.jitter()
		require.GreaterOrEqual(t, j, 0.8)
		require.Less(t, j, 1.3)
	}
}

func TestNewDoer(t *testing.T) {
	t.Parallel()
	def := NewDoer(nil)
	hc, ok := def.(*http.Client)
	require.True(t, ok)
	assert.Equal(t, time.Duration(0), hc.Timeout, "no overall timeout")
	assert.Same(t, def, NewDoer(nil), "one shared default client")
	assert.Same(t, def, NewDoer((*http.Client)(nil)))
	tr, ok := hc.Transport.(*http.Transport)
	require.True(t, ok)
	assert.NotNil(t, tr.Proxy)
	assert.Equal(t, responseHeaderTimeout, tr.ResponseHeaderTimeout)
	assert.Equal(t, tlsHandshakeTimeout, tr.TLSHandshakeTimeout)
	assert.True(t, tr.ForceAttemptHTTP2)
	assert.ErrorIs(t, hc.CheckRedirect(nil, nil), http.ErrUseLastResponse)

	follow := func(*http.Request, []*http.Request) error { return nil }
	mine := &http.Client{Timeout: time.Second, CheckRedirect: follow}
	got, ok := NewDoer(mine).(*http.Client)
	require.True(t, ok)
	assert.NotSame(t, mine, got)
	assert.Equal(t, time.Second, got.Timeout)
	assert.ErrorIs(t, got.CheckRedirect(nil, nil), http.ErrUseLastResponse)
	assert.NoError(t, mine.CheckRedirect(nil, nil), "the caller's client is unchanged")

	custom := plainDoer{}
	assert.Equal(t, Doer(custom), NewDoer(custom))
}

type roundTripper struct{}

func (roundTripper) RoundTrip(*http.Request) (*http.Response, error) { return nil, errors.New("no") }

func TestCloneClient(t *testing.T) {
	t.Parallel()
	c, err := CloneClient(nil)
	require.NoError(t, err)
	assert.NotSame(t, NewDoer(nil).(*http.Client).Transport, c.Transport)

	tr := &http.Transport{MaxIdleConns: 7}
	mine := &http.Client{Transport: tr, Timeout: time.Second}
	c, err = CloneClient(mine)
	require.NoError(t, err)
	ct, ok := c.Transport.(*http.Transport)
	require.True(t, ok)
	assert.NotSame(t, tr, ct)
	assert.Equal(t, 7, ct.MaxIdleConns)
	assert.Equal(t, time.Second, c.Timeout)
	assert.ErrorIs(t, c.CheckRedirect(nil, nil), http.ErrUseLastResponse)
	assert.Nil(t, mine.CheckRedirect)
	ct.Proxy = nil
	assert.Same(t, tr, mine.Transport)

	c, err = CloneClient(&http.Client{})
	require.NoError(t, err)
	assert.IsType(t, &http.Transport{}, c.Transport)

	_, err = CloneClient(&http.Client{Transport: roundTripper{}})
	assert.ErrorIs(t, err, ErrCannotClone)
	_, err = CloneClient(plainDoer{})
	assert.ErrorIs(t, err, ErrCannotClone)
}
