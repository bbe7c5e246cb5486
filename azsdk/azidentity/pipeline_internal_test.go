package azidentity

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIMDSTransportHasNoProxy: IMDS and Arc requests, with no transport of
// the caller's, use a transport without a proxy (the environment's proxy
// cannot be set per test: net/http reads it once per process); Entra ID
// requests keep the environment's proxy; neither follows redirects.
func TestIMDSTransportHasNoProxy(t *testing.T) {
	tr, ok := imdsTransport.Transport.(*http.Transport)
	require.True(t, ok)
	assert.Nil(t, tr.Proxy)
	def, ok := defaultTransport.Transport.(*http.Transport)
	require.True(t, ok)
	assert.NotNil(t, def.Proxy)
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	require.NoError(t, err)
	err = imdsTransport.CheckRedirect(req, nil)
	assert.ErrorIs(t, err, http.ErrUseLastResponse, "redirects are refused")

}
