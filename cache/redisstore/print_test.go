package redisstore_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/cache/redisstore"
)

// TestPrintingShowsNoKey: a Store (and Options, and a credential's options
// holding the Store as Cache) printed with any verb or logged shows neither
// the encryption key nor the AES key schedule derived from it.
func TestPrintingShowsNoKey(t *testing.T) {
	t.Parallel()
	key := make([]byte, redisstore.KeySize)
	for i := range key {
		key[i] = byte(0xA0 + i)
	}
	opts := redisstore.Options{Addr: "127.0.0.1:1", EncryptionKey: key, PreviousEncryptionKeys: [][]byte{key}}
	store, err := redisstore.New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })

	// The first words of an AES-256 key schedule are the key itself.
	leaks := []string{fmt.Sprint(key), fmt.Sprintf("%x", key), fmt.Sprintf("%#v", key)}
	for i := 0; i+4 <= len(key); i += 4 {
		leaks = append(leaks, strconv.FormatUint(uint64(binary.BigEndian.Uint32(key[i:])), 10))
		leaks = append(leaks, strconv.FormatUint(uint64(binary.LittleEndian.Uint32(key[i:])), 10))
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", slog.Any("store", store), slog.Any("options", opts))
	outputs := map[string]string{"log": logged.String()}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		outputs[verb+" store"] = fmt.Sprintf(verb, store)
		outputs[verb+" options"] = fmt.Sprintf(verb, opts)
		outputs[verb+" credential options"] = fmt.Sprintf(verb, azcred.ClientSecretCredentialOptions{Cache: store})
	}
	for name, out := range outputs {
		for _, leak := range leaks {
			assert.NotContains(t, out, leak, "%s prints key material: %s", name, out)
		}
	}
	assert.Contains(t, fmt.Sprint(store), "127.0.0.1:1", "the description names the server")
}
