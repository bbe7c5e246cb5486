package env

// Variables of azcred's own, besides Azure's.
const (
	// AlwaysProbeIMDS ("1" or "true") makes DefaultAzureCredential probe
	// IMDS even where the firmware says the machine is not an Azure VM.
	AlwaysProbeIMDS = "AZCRED_ALWAYS_PROBE_IMDS"
	// DisableToolTokenCache ("1" or "true") keeps the developer tools'
	// tokens in memory only, not in the persistent cache.
	DisableToolTokenCache = "AZCRED_DISABLE_TOOL_TOKEN_CACHE"
)

// Variables of the developer tools that say where their sign-in state is.
const (
	AzureConfigDir = "AZURE_CONFIG_DIR" // the Azure CLI's folder; default ~/.azure
	AzdConfigDir   = "AZD_CONFIG_DIR"   // the Azure Developer CLI's folder; default ~/.azd
)
