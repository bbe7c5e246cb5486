package azcred

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDeveloperToolOrder(t *testing.T) {
	t.Setenv("AZURE_TOKEN_CREDENTIALS", "dev")
	tests := []struct {
		name  string
		order []string
		want  []string
	}{
		{"default", nil, []string{credNameAzureCLI, credNameAzurePowerShell, credNameAzureDeveloperCLI}},
		{"azidentity", []string{credNameAzureCLI, credNameAzureDeveloperCLI, credNameAzurePowerShell}, []string{credNameAzureCLI, credNameAzureDeveloperCLI, credNameAzurePowerShell}},
		{"partial", []string{credNameAzureDeveloperCLI}, []string{credNameAzureDeveloperCLI, credNameAzureCLI, credNameAzurePowerShell}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewDefaultAzureCredential(&DefaultAzureCredentialOptions{DeveloperToolOrder: tt.order})
			require.NoError(t, err)
			assert.Equal(t, tt.want, c.Sources())
		})
	}
	_, err := NewDefaultAzureCredential(&DefaultAzureCredentialOptions{DeveloperToolOrder: []string{"ManagedIdentityCredential"}})
	assert.ErrorContains(t, err, "not a developer tool")
	_, err = NewDefaultAzureCredential(&DefaultAzureCredentialOptions{DeveloperToolOrder: []string{credNameAzureCLI, credNameAzureCLI}})
	assert.ErrorContains(t, err, "twice")
	c, err := NewDefaultAzureCredential(&DefaultAzureCredentialOptions{ExcludeAzureCLICredential: true, DeveloperToolOrder: []string{credNameAzureCLI, credNameAzureDeveloperCLI}})
	require.NoError(t, err)
	assert.Equal(t, []string{credNameAzureDeveloperCLI, credNameAzurePowerShell}, c.Sources())
}
