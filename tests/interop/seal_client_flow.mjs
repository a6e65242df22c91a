// End-to-end oracle: the public SealClient + SessionKey of @mysten/seal talk over HTTP to key servers
// given on stdin (our localnet stand-ins). The Sui client is an offline stub that answers the three
// reads the SDK makes: package version, KeyServer object, and its V1 dynamic field (name, url, pk).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { SealClient, SessionKey } from '@mysten/seal';
import { Ed25519Keypair } from '@mysten/sui/keypairs/ed25519';
import { Transaction } from '@mysten/sui/transactions';

const entry = fileURLToPath(import.meta.resolve('@mysten/seal'));
const { KeyServerMove, KeyServerMoveV1 } = await import(pathToFileURL(join(dirname(entry), 'bcs.mjs')).href);

const hex = (bytes) => Buffer.from(bytes).toString('hex');
const bytes = (text) => new Uint8Array(Buffer.from(text, 'hex'));
const input = JSON.parse(readFileSync(0, 'utf8'));
const servers = new Map(input.servers.map((s) => [s.objectId, s]));

const suiClient = {
	core: {
		async getObject({ objectId }) {
			const server = servers.get(objectId);
			if (!server) return { object: { objectId, version: '1' } };
			const content = KeyServerMove.serialize({ id: objectId, firstVersion: 1, lastVersion: 1 }).toBytes();
			return { object: { objectId, version: '1', content } };
		},
		async getDynamicField({ parentId }) {
			const server = servers.get(parentId);
			const value = KeyServerMoveV1.serialize({ name: 'localnet', url: server.url, keyType: 0, pk: bytes(server.pk) }).toBytes();
			return { dynamicField: { value: { bcs: value } } };
		},
	},
};

const client = new SealClient({
	suiClient,
	serverConfigs: input.servers.map((s) => ({ objectId: s.objectId, weight: 1 })),
	verifyKeyServers: true,
	timeout: 20000,
});
const signer = Ed25519Keypair.fromSecretKey(bytes(input.userSeed));
const sessionKey = await SessionKey.create({
	address: signer.getPublicKey().toSuiAddress(),
	packageId: input.packageId,
	ttlMin: 5,
	signer,
	suiClient,
});
await sessionKey.getCertificate();

const tx = new Transaction();
tx.moveCall({
	target: `${input.packageId}::account::seal_approve`,
	arguments: [
		tx.pure.vector('u8', bytes(input.innerId)),
		tx.sharedObjectRef({ objectId: input.accountId, initialSharedVersion: input.initialSharedVersion, mutable: false }),
	],
});
const txBytes = await tx.build({ onlyTransactionKind: true });

const out = { address: sessionKey.getAddress() };
const { encryptedObject } = await client.encrypt({
	threshold: input.threshold,
	packageId: input.packageId,
	id: input.innerId,
	data: new TextEncoder().encode('sealed by typescript'),
});
out.tsObject = hex(encryptedObject);
try {
	out.tsPlaintext = hex(await client.decrypt({ data: encryptedObject, sessionKey, txBytes }));
	out.pyPlaintext = hex(await client.decrypt({ data: bytes(input.pyObject), sessionKey, txBytes }));
} catch (error) {
	out.error = `${error.constructor.name}: ${error.message}`;
}
const exported = sessionKey.export();
out.session = Buffer.from(JSON.stringify({ ...exported })).toString('base64');
process.stdout.write(JSON.stringify(out));
