package interop

import (
	"encoding/json"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAzureCLI signs the real Azure CLI in as the secret app through the
// emulator's proxy and gets a token from it: the recipe in the README. The
// CLI is large (Debian's azure-cli is 730 MB) and not installed by .ci/run,
// so this test runs only where `az` is on PATH.
func TestAzureCLI(t *testing.T) {
	if _, err := exec.LookPath("az"); err != nil {
		t.Skip("az is not on PATH; this test runs where the Azure CLI is installed (apt-get install azure-cli)")
	}
	config := t.TempDir()
	az := func(args ...string) []byte {
		t.Helper()
		script := `. "$0" && export AZURE_CONFIG_DIR="$1" && shift && exec az "$@"`
		cmd := exec.Command("bash", append([]string{"-c", script, hostFile("secret"), config}, args...)...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + env.home}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "az %s: %s", args, out)
		return out
	}
	vars := hostVars(t, "secret")
	az("login", "--service-principal", "--username", vars["AZURE_CLIENT_ID"], "--password", vars["AZURE_CLIENT_SECRET"],
		"--tenant", vars["AZURE_TENANT_ID"], "--allow-no-subscriptions", "--output", "none")
	var tok struct {
		AccessToken string `json:"accessToken"`
	}
	require.NoError(t, json.Unmarshal(az("account", "get-access-token", "--scope", "https://management.azure.com/.default", "--output", "json"), &tok))
	checkToken(t, tok.AccessToken, vars["AZURE_CLIENT_ID"], false)
}
