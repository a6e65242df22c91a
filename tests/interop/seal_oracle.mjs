// Interop oracle: runs @mysten/seal's own encrypt/decrypt/ElGamal code on JSON from stdin and prints JSON.
// Internal dist modules are not exported by the package, so they are imported by file path next to the
// resolved entry point; the npm version is pinned in package.json.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const entry = fileURLToPath(import.meta.resolve('@mysten/seal'));
const dist = (name) => pathToFileURL(join(dirname(entry), name)).href;
const { EncryptedObject } = await import('@mysten/seal');
const { encrypt, KemType } = await import(dist('encrypt.mjs'));
const { decrypt } = await import(dist('decrypt.mjs'));
const { AesGcm256, Hmac256Ctr } = await import(dist('dem.mjs'));
const { G1Element, G2Element } = await import(dist('bls12381.mjs'));
const { elgamalDecrypt } = await import(dist('elgamal.mjs'));

const hex = (bytes) => Buffer.from(bytes).toString('hex');
const bytes = (text) => new Uint8Array(Buffer.from(text, 'hex'));
const request = JSON.parse(readFileSync(0, 'utf8'));

async function run(op) {
	switch (op.op) {
		case 'encrypt': {
			const input = op.dem === 'hmac' ? new Hmac256Ctr(bytes(op.data), bytes(op.aad)) : new AesGcm256(bytes(op.data), bytes(op.aad));
			const { encryptedObject } = await encrypt({
				keyServers: op.servers.map((s) => ({ objectId: s.objectId, pk: bytes(s.pk), name: 'py', url: 'http://unused', keyType: 0 })),
				kemType: KemType.BonehFranklinBLS12381DemCCA,
				threshold: op.threshold,
				packageId: op.packageId,
				id: op.id,
				encryptionInput: input,
			});
			return { object: hex(encryptedObject) };
		}
		case 'decrypt': {
			const parsed = EncryptedObject.parse(bytes(op.object));
			const fullId = hex(bytes(parsed.packageId.slice(2) + parsed.id));
			const keys = new Map(op.keys.map((k) => [`${fullId}:${k.objectId}`, G1Element.fromBytes(bytes(k.usk))]));
			const publicKeys = op.publicKeys ? op.publicKeys.map((pk) => G2Element.fromBytes(bytes(pk))) : undefined;
			return { plaintext: hex(await decrypt({ encryptedObject: parsed, keys, publicKeys })) };
		}
		case 'elgamal': {
			return { keys: op.ciphertexts.map((c) => hex(elgamalDecrypt(bytes(op.secret), [Buffer.from(c[0], 'base64'), Buffer.from(c[1], 'base64')]))) };
		}
		default:
			throw new Error(`unknown op ${op.op}`);
	}
}

const results = [];
for (const op of request) {
	try {
		results.push(await run(op));
	} catch (error) {
		results.push({ error: String(error && error.message ? error.message : error) });
	}
}
process.stdout.write(JSON.stringify(results));
