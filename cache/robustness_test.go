package cache

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/internal/clock"
)

// A fetch that panics fails its callers with ErrFetchPanicked instead of
// ending the process, keeps nothing of the panic's value, and leaves the
// engine usable.
func TestFetchPanicBecomesAnError(t *testing.T) {
	t.Parallel()
	panics := true
	e := New(func(context.Context, Request) (Token, error) {
		if panics {
			panic("secret-in-panic-value")
		}
		return Token{Value: "t", ExpiresOn: time.Now().Add(time.Hour)}, nil
	}, nil)
	r := Request{Scopes: []string{"s"}}
	_, err := e.Get(context.Background(), r)
	require.ErrorIs(t, err, ErrFetchPanicked)
	assert.False(t, strings.Contains(err.Error(), "secret-in-panic-value"))
	e.Wait()

	panics = false
	tok, err := e.Get(context.Background(), r)
	require.NoError(t, err)
	assert.Equal(t, "t", tok.Value)
	e.Wait()
}

func TestTokenAndEntryPrintWithoutValues(t *testing.T) {
	t.Parallel()
	tok := Token{Value: "bearer-secret", ExpiresOn: time.Unix(0, 0).UTC()}
	ent := Entry{Value: "refresh-secret"}
	for _, s := range []string{fmt.Sprint(tok), fmt.Sprintf("%+v %#v %v", tok, tok, &tok), fmt.Sprintf("%v %#v", ent, ent), fmt.Sprint([]Token{tok})} {
		assert.NotContains(t, s, "secret")
		assert.Contains(t, s, "REDACTED")
	}
	assert.Contains(t, Token{}.String(), `Value: ""`)
}

// Tokens of keys that are no longer usable are dropped when the table is
// next written, so the table does not grow with every key ever asked for.
func TestExpiredEntriesAreDropped(t *testing.T) {
	t.Parallel()
	fake := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	e := New(func(context.Context, Request) (Token, error) {
		return Token{Value: "t", ExpiresOn: fake.Now().Add(time.Hour)}, nil
	}, &Options{Clock: fake, Jitter: func() float64 { return 0 }})
	for _, tenant := range []string{"a", "b", "c"} {
		_, err := e.Get(context.Background(), Request{Scopes: []string{"s"}, TenantID: tenant})
		require.NoError(t, err)
	}
	e.Wait()
	assert.Len(t, e.tab.Load().all, 3)
	fake.Advance(2 * time.Hour) // a, b and c are past usable
	_, err := e.Get(context.Background(), Request{Scopes: []string{"s"}, TenantID: "d"})
	require.NoError(t, err)
	e.Wait()
	assert.Len(t, e.tab.Load().all, 1, "only d is left")
}
