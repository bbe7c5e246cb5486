// Gets a token with @azure/identity for each credential named, configured
// only by the environment, and prints each outcome as one line of JSON for
// the Go tests in ../.
//
//   node token.mjs <credential>...
//
// credential: client-secret, client-certificate, environment,
// workload-identity, managed-identity or default. The scope is ARM's,
// or AZCRED_INTEROP_SCOPE.
import {
  ClientCertificateCredential,
  ClientSecretCredential,
  DefaultAzureCredential,
  EnvironmentCredential,
  ManagedIdentityCredential,
  WorkloadIdentityCredential,
} from "@azure/identity";

const kinds = process.argv.slice(2);
const env = process.env;
const scope = env.AZCRED_INTEROP_SCOPE || "https://management.azure.com/.default";

function credential(kind) {
  switch (kind) {
    case "client-secret":
      return new ClientSecretCredential(env.AZURE_TENANT_ID, env.AZURE_CLIENT_ID, env.AZURE_CLIENT_SECRET);
    case "client-certificate":
      return new ClientCertificateCredential(env.AZURE_TENANT_ID, env.AZURE_CLIENT_ID, {
        certificatePath: env.AZURE_CLIENT_CERTIFICATE_PATH,
      });
    case "environment":
      return new EnvironmentCredential();
    case "workload-identity":
      return new WorkloadIdentityCredential();
    case "managed-identity":
      return env.AZURE_CLIENT_ID ? new ManagedIdentityCredential(env.AZURE_CLIENT_ID) : new ManagedIdentityCredential();
    case "default":
      return new DefaultAzureCredential();
    default:
      throw new Error(`unknown credential ${JSON.stringify(kind)}`);
  }
}

for (const kind of kinds) {
  try {
    const token = await credential(kind).getToken(scope);
    console.log(JSON.stringify({ credential: kind, token: token.token, expiresOnTimestamp: token.expiresOnTimestamp }));
  } catch (err) {
    console.log(JSON.stringify({ credential: kind, error: `${err.name}: ${err.message}` }));
    process.exitCode = 1;
  }
}
