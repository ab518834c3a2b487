// Creates Blob containers in Azurite (object_store cannot create containers).
// Usage: node azurite-containers.js ENDPOINT ACCOUNT KEY CONTAINER...
const { BlobServiceClient, StorageSharedKeyCredential } = require('@azure/storage-blob');

async function main() {
  const [endpoint, account, key, ...containers] = process.argv.slice(2);
  const service = new BlobServiceClient(endpoint, new StorageSharedKeyCredential(account, key));
  for (const name of containers) {
    await service.getContainerClient(name).createIfNotExists();
  }
}

main().catch((error) => {
  console.error(`creating Azurite containers failed: ${error.message}`);
  process.exit(1);
});
