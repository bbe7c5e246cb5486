package emulator

import (
	"errors"
	"net/http"
	"slices"
	"strings"
)

// The Azure Resource Manager hosts whose subscription list the proxy
// answers: `az login` asks for it right after getting its token, and fails
// the sign-in when it cannot. The emulator is no ARM emulator: it answers
// GET /subscriptions with an empty list and nothing else.
var armHosts = []string{"management.azure.com", "management.chinacloudapi.cn", "management.usgovcloudapi.net"}

func isARMHost(host string) bool { return slices.Contains(armHosts, strings.ToLower(host)) }

// handleARM answers a request the proxy took for an ARM host.
func (e *Emulator) handleARM(w http.ResponseWriter, r *http.Request) {
	armError := func(status int, code, msg string) {
		writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
	}
	if r.Method != http.MethodGet || strings.TrimSuffix(r.URL.Path, "/") != "/subscriptions" {
		armError(http.StatusNotFound, "NotEmulated", "The azcred emulator answers only GET /subscriptions of Azure Resource Manager (which `az login` asks, with an empty list); "+r.Method+" "+r.URL.Path+" is not emulated.")
		return
	}
	if r.URL.Query().Get("api-version") == "" {
		armError(http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
		return
	}
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	claims, err := e.VerifyAccessToken(bearer)
	if !ok || (err != nil && !errors.Is(err, errTokenExpired)) {
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", error_description="The access token is missing or was not issued by this emulator."`)
		armError(http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is missing or invalid: it must be a token the emulator issued.")
		return
	}
	if err != nil {
		armError(http.StatusUnauthorized, "ExpiredAuthenticationToken", "The access token expiry UTC time is earlier than current UTC time.")
		return
	}
	aud := audiences(claims)
	if !containsAny(aud, "https://management.azure.com", "https://management.azure.com/", "https://management.core.windows.net", "https://management.core.windows.net/") {
		armError(http.StatusUnauthorized, "InvalidAuthenticationTokenAudience", "The access token has an invalid audience; ask for https://management.azure.com/.default or https://management.core.windows.net//.default.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": []any{}, "count": map[string]any{"type": "Total", "value": 0}})
}
