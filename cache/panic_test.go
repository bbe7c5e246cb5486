package cache

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
