// Gets one token with @azure/identity, configured only by the environment,
// and prints the outcome as one line of JSON for the Go tests in ../.
//
//   node token.mjs <credential> [scope]
//
// credential: client-secret, client-certificate, environment,
// workload-identity, managed-identity or default.
import {
  ClientCertificateCredential,
  ClientSecretCredential,
  DefaultAzureCredential,
  EnvironmentCredential,
  ManagedIdentityCredential,
  WorkloadIdentityCredential,
} from "@azure/identity";

const [kind, scope = "https://management.azure.com/.default"] = process.argv.slice(2);
const env = process.env;

function credential() {
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

try {
  const token = await credential().getToken(scope);
  console.log(JSON.stringify({ token: token.token, expiresOnTimestamp: token.expiresOnTimestamp }));
} catch (err) {
  console.log(JSON.stringify({ error: `${err.name}: ${err.message}` }));
  process.exitCode = 1;
}
