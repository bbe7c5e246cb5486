// Package benchmarks measures azcred and azidentity side by side against the
// local emulator (azcredtest/emulator), over loopback only. It is a nested
// module so that the Azure SDK stays out of the core module's dependencies.
//
// Each measurement is a function that runs one library through one scenario
// and returns what it saw: [FirstToken] (client secret, empty cache),
// [CachedGetToken] (a held token, one goroutine or parallel), [Storm] (many
// callers at expiry), [AzureCLI] (repeated GetToken with a fake `az`),
// [Laptop] (DefaultAzureCredential where only a fake `az` works and the
// Instance Metadata Service address is blackholed), [VM]
// (DefaultAzureCredential where IMDS answers at 169.254.169.254, redirected
// to the emulator on loopback) and [BinarySizes] (a
// minimal DefaultAzureCredential program of each library and a net/http
// baseline, stripped). [Run] runs them all and returns a [Table];
// `go run ./cmd/sidebyside` prints it.
//
// [AzureCLI], [Laptop] and [VM] change the process's environment (PATH, and the
// AZURE_*, IDENTITY_*, MSI_* and IMDS_* variables) while they run and restore
// it afterwards, because both libraries find `az` through PATH and read their
// configuration from the environment: do not run them concurrently with
// anything else in the process.
package benchmarks
