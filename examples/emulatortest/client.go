// Package emulatortest shows how to test your own code that calls an Azure
// API with a token, using the local Entra ID emulator and a fake API on
// loopback: see client_test.go.
package emulatortest

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/azcred/azcred"
)

// Client calls an API that needs a bearer token for scope.
type Client struct {
	Cred  azcred.TokenCredential // where tokens come from
	HTTP  *http.Client           // sends the API requests
	Base  string                 // the API's base URL
	Scope string                 // the scope tokens are for
}

// Whoami GETs Base + "/whoami" with a bearer token and returns the body.
func (c *Client) Whoami(ctx context.Context) (string, error) {
	tok, err := c.Cred.GetToken(ctx, azcred.TokenRequestOptions{Scopes: []string{c.Scope}})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+"/whoami", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("whoami: %s", resp.Status)
	}
	return string(body), nil
}
