package oauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/internal/httpx"
)

// A server that sends interval 0 (or a negative one) would make the client
// poll back to back; the RFC 8628 default applies instead.
func TestDeviceCodeIntervalZeroTakesTheDefault(t *testing.T) {
	t.Parallel()
	for _, interval := range []string{"0", "-3", `"0"`} {
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"device_code":"d","user_code":"U","verification_uri":"https://example.invalid/device","expires_in":900,"interval":` + interval + `}`))
		}))
		client := NewClient(Options{HTTP: httpx.New(httpx.Options{Transport: srv.Client()})})
		dc, err := client.StartDeviceCode(context.Background(), Params{Endpoint: srv.URL + "/t/oauth2/v2.0/devicecode", ClientID: "c", Scopes: []string{"https://management.azure.com/.default"}})
		srv.Close()
		require.NoError(t, err, interval)
		assert.Equal(t, defaultPollInterval, dc.Interval, interval)
	}
}
