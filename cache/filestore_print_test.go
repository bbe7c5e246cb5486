package cache

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A FileStore prints without its encryption key, whatever the verb, as a
// value or a pointer.
func TestFileStorePrintsNoKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xA5}, KeySize)
	s, err := NewFileStore("azcred", &FileStoreOptions{Dir: t.TempDir(), KeyStore: staticKeys(key)})
	require.NoError(t, err)
	id := keyID(key)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{s, *s} {
			out := fmt.Sprintf(verb, v)
			assert.NotContains(t, out, "165 165", verb)                   // the key as %v prints bytes
			assert.NotContains(t, out, "0xa5, 0xa5", verb)                // ... as %#v
			assert.NotContains(t, out, hex.EncodeToString(key[:4]), verb) // ... as hex
			assert.NotContains(t, out, fmt.Sprint(id[:4]), verb)
			assert.Contains(t, out, s.Path(), verb)
		}
	}
}
