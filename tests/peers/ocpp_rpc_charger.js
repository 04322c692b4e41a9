#!/usr/bin/env node
// A strict third-party OCPP 1.6J charge point for the ocpp-bridge tests, built on the `ocpp-rpc`
// library's RPCClient (strictMode: every CALL the bridge sends it and every CALLRESULT the bridge
// returns is checked against the library's bundled OCPP 1.6 JSON schemas). It connects to the
// bridge's local endpoint as a `type: ocpp` charger. Driven by tests/helpers/ocpp_charger.py.
//
//   node ocpp_rpc_charger.js --url ws://127.0.0.1:PORT/ocpp --identity ID --password P
//        [--ca CA.pem] [--cert CLIENT.pem --key CLIENT.key]   (wss://: the CA to trust, a client cert)
//
// stdout: one JSON object per line: "connected" once the socket is open (it retries until then),
// "call" for each call from the bridge (answered at once: RemoteStart/RemoteStop/SetChargingProfile/
// ChangeAvailability/TriggerMessage Accepted, UnlockConnector Unlocked; the test sends what a trigger asks), "strictValidationFailure", "badMessage",
// "close", and "result"/"error" for each command.
// stdin: one JSON command per line, {"id", "method", "params"}: a call to the bridge, answered by a
// "result" or "error" event carrying the same id. Exits on SIGTERM, SIGINT and when stdin closes.
'use strict';
const readline = require('node:readline');
const { parseArgs } = require('node:util');
const fs = require('node:fs');
const { RPCClient } = require('ocpp-rpc');

const { values: opts } = parseArgs({
    options: {
        url: { type: 'string' }, identity: { type: 'string' }, password: { type: 'string' },
        ca: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' },
    },
});
if (!opts.url || !opts.identity) {
    process.stderr.write('usage: ocpp_rpc_charger.js --url ws://host:port/ocpp --identity ID [--password P]\n');
    process.exit(2);
}

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const client = new RPCClient({
    endpoint: opts.url,
    identity: opts.identity,
    password: opts.password,
    protocols: ['ocpp1.6'],
    strictMode: true,
    reconnect: false,
    callTimeoutMs: 10000,
    // wss://: trust only --ca (as a charger given the bridge's CA); --cert/--key for security profile 3
    wsOpts: {
        minVersion: 'TLSv1.2',
        ...(opts.ca ? { ca: fs.readFileSync(opts.ca) } : {}),
        ...(opts.cert ? { cert: fs.readFileSync(opts.cert), key: fs.readFileSync(opts.key) } : {}),
    },
});

const answers = {
    RemoteStartTransaction: { status: 'Accepted' },
    RemoteStopTransaction: { status: 'Accepted' },
    SetChargingProfile: { status: 'Accepted' },
    ChangeAvailability: { status: 'Accepted' },
    UnlockConnector: { status: 'Unlocked' },
    TriggerMessage: { status: 'Accepted' },
};
for (const [method, answer] of Object.entries(answers)) {
    client.handle(method, ({ params }) => {
        emit({ event: 'call', method, params });
        return answer;
    });
}
client.on('strictValidationFailure', (e) => emit({
    event: 'strictValidationFailure', method: e.method, outbound: e.outbound, isCall: e.isCall,
    code: e.error.rpcErrorCode, error: e.error.message,
}));
client.on('badMessage', (e) => emit({ event: 'badMessage', message: e.buffer.toString('utf8'), error: e.error.message }));
client.on('close', ({ code, reason }) => emit({ event: 'close', code, reason: String(reason ?? '') }));

async function runCommand(line) {
    let cmd;
    try {
        cmd = JSON.parse(line);
    } catch (err) {
        return emit({ event: 'error', id: null, code: 'BadCommand', message: err.message });
    }
    const { id = null, method, params = {} } = cmd;
    try {
        emit({ event: 'result', id, result: await client.call(method, params) });
    } catch (err) {
        emit({ event: 'error', id, code: err.rpcErrorCode ?? err.name, message: err.message });
    }
}

async function connect() {
    // The bridge's endpoint may not listen yet: try for 10 s, as a charger keeps trying.
    for (let attempt = 0; attempt < 200; attempt++) {
        try {
            await client.connect();
            return emit({ event: 'connected', protocol: client.protocol });
        } catch (err) {
            // An HTTP answer other than the upgrade: ocpp-rpc puts its status in err.code (a number).
            if (typeof err.code === 'number') return emit({ event: 'refused', status: err.code, error: err.message });
            await new Promise((resolve) => setTimeout(resolve, 50));
        }
    }
    emit({ event: 'refused', status: null, error: 'the endpoint never listened' });
}

async function shutdown() {
    const timer = setTimeout(() => process.exit(0), 2000);
    try {
        await client.close({ code: 1000, reason: 'charger off' });
    } finally {
        clearTimeout(timer);
        process.exit(0);
    }
}

connect().then(() => {
    const rl = readline.createInterface({ input: process.stdin });
    rl.on('line', (line) => { if (line.trim()) runCommand(line); });
    rl.on('close', shutdown);
});
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
