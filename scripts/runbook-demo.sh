#!/usr/bin/env bash
# Plays the README's "On-call runbook" incident against a real engine and prints each command with its
# output and exit code — the README's transcript is this script's output. The engine runs in a temp
# directory on the embedded store (PGlite: no HL7E_DATABASE_URL) with the Redis at HL7E_REDIS_URL
# (default 127.0.0.1:6379) under its own queue prefix; a stand-in EHR answers 503 until the script
# "fixes" it. The patients are made up. Everything is removed at the end.
#
#   npm run build && scripts/runbook-demo.sh
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLI="$ROOT/dist/cli/main.js"
[[ -f $CLI ]] || { echo "runbook-demo: build first (npm run build)" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hl7e-runbook.XXXXXX")
PREFIX="runbook-$$"
ENGINE_PID=''
EHR_PID=''

unset HL7E_DATABASE_URL HL7E_QUEUE HL7E_OPERATOR
export NO_COLOR=1 HL7E_DATA_DIR="$WORK/data" HL7E_ARCHIVE_DIR="$WORK/archive" \
  HL7E_MAPPINGS_DIR="$WORK/mappings" HL7E_QUEUE_PREFIX="$PREFIX" HL7E_ROLES_FILE="$WORK/roles.yaml"

hl7e() { node "$CLI" "$@"; }

cleanup() {
  [[ -n $ENGINE_PID ]] && kill "$ENGINE_PID" 2>/dev/null && wait "$ENGINE_PID" 2>/dev/null
  [[ -n $EHR_PID ]] && kill "$EHR_PID" 2>/dev/null
  (cd "$ROOT" && node --input-type=module -e "
    const { Redis } = await import('ioredis');
    const r = new Redis(process.env.HL7E_REDIS_URL ?? 'redis://127.0.0.1:6379');
    const keys = await r.keys('bull:$PREFIX-*');
    if (keys.length) await r.del(...keys);
    r.disconnect();")
  rm -rf "$WORK"
}
trap cleanup EXIT

# Prints a command as typed, then what it printed (stdout and stderr) and its exit code.
show() {
  printf '$ %s\n' "$1"
  eval "$1" 2>&1
  printf '[exit %d]\n\n' "$?"
}
note() { printf '# %s\n' "$*"; }

wait_for() { # what, command: polls every half second for up to 90 s
  for _ in $(seq 180); do eval "$2" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "runbook-demo: timed out waiting for $1" >&2
  tail -n 20 "$WORK/engine.log" >&2
  exit 1
}

free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

start_engine() {
  rm -f "$HL7E_DATA_DIR/admin.json"
  node "$CLI" start --channels "$WORK/channels" >>"$WORK/engine.log" 2>&1 &
  ENGINE_PID=$!
  wait_for 'the engine to listen' "[[ -f $HL7E_DATA_DIR/admin.json ]] && grep -q '\"msg\":\"hl7e started\"' '$WORK/engine.log'"
}

# A status figure from `hl7e status --json`, e.g. `status_of deadLetters`.
status_of() {
  HL7E_OPERATOR=olga hl7e status --json 2>/dev/null | node -e "let t='';process.stdin.on('data',c=>t+=c).on('end',()=>{
    const d=JSON.parse(t).destinations[0]; console.log(d['$1'])})"
}

# --- the setting: a lab feed to an EHR ------------------------------------------------------------
mkdir -p "$WORK/channels"
cat >"$WORK/ehr.mjs" <<'EOF'
// Stand-in EHR: 503 while the flag file exists, else 200 with a transaction-response Bundle.
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
const [flag, portFile] = process.argv.slice(2);
const ok = JSON.stringify({ resourceType: 'Bundle', type: 'transaction-response',
  entry: [{ response: { status: '201 Created' } }] });
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (existsSync(flag)) res.writeHead(503).end();
    else res.writeHead(200, { 'content-type': 'application/fhir+json' }).end(ok);
  });
});
server.listen(0, '127.0.0.1', () => writeFileSync(portFile, String(server.address().port)));
EOF
touch "$WORK/ehr-down"
node "$WORK/ehr.mjs" "$WORK/ehr-down" "$WORK/ehr.port" &
EHR_PID=$!
wait_for 'the stand-in EHR' "[[ -s $WORK/ehr.port ]]"
MLLP_PORT=$(free_port)
# Short retries, and a breaker that does not open, so the demo dead-letters in seconds (the defaults:
# 12 attempts up to 5 min apart, and a breaker that pauses a failing destination 30 s at a time).
cat >"$WORK/channels/lab.yaml" <<EOF
name: lab
source:
  mllp: { host: 127.0.0.1, port: $MLLP_PORT }
destinations:
  - name: ehr
    fhir: { baseUrl: 'http://127.0.0.1:$(cat "$WORK/ehr.port")/fhir' }
    retry: { attempts: 3, initialDelayMs: 100, maxDelayMs: 300 }
    circuitBreaker: { minimumRequests: 1000 }
EOF
cat >"$WORK/roles.yaml" <<'EOF'
operators:
  olga: [oncall]
  ines: [auditor]
EOF
# Twelve results for three (made-up) patients, as the lab's feed sends them.
patients=('MRN0001^^^HOSP^MR||Testpatient^Anna||19610203|F' 'MRN0002^^^HOSP^MR||Testpatient^Ben||19720415|M'
  'MRN0003^^^HOSP^MR||Testpatient^Cleo||19830726|F')
for i in $(seq 1 12); do
  id=$(printf 'LAB%04d' "$i")
  printf '%s\n' "MSH|^~\\&|LIS|LAB|HL7E|HOSP|20260301031500||ORU^R01^ORU_R01|$id|P|2.5.1" \
    "PID|1||${patients[$(((i - 1) % 3))]}" \
    "OBR|1|PO$id^EHR|FO$id^LIS|718-7^Hemoglobin [Mass/volume] in Blood^LN|||20260301030000" \
    'OBX|1|NM|718-7^Hemoglobin [Mass/volume] in Blood^LN||13.5|g/dL^g/dL^UCUM|12-16|N|||F' ''
done >"$WORK/results.hl7"

start_engine
cd "$WORK" || exit 1

# --- 03:00: the EHR answers 503 while the lab keeps sending ------------------------------------------
note 'the lab sends 12 results while the EHR answers 503 (every one is ACKed: stored before the ACK)'
show "hl7e send results.hl7 --host 127.0.0.1 --port $MLLP_PORT"
wait_for 'the dead letters' '[[ $(status_of deadLetters) == 12 ]]'

show 'export HL7E_OPERATOR=olga'
show 'hl7e status'
show 'hl7e messages list --status failed'
ID=$(hl7e messages list --status failed --json | node -e "let t='';process.stdin.on('data',c=>t+=c).on('end',()=>
  console.log(JSON.parse(t).messages.at(-1).id))")
show "hl7e messages show $ID"
show "hl7e messages show $ID --raw"
show "hl7e messages show $ID --raw --reason 'INC-1234 check payload' | tr '\\r' '\\n'"

# --- the EHR is back ---------------------------------------------------------------------------------
rm "$WORK/ehr-down"
note 'the EHR team reports it is back'
show "hl7e replay --channel lab --status failed --since 1h --dry-run --reason 'INC-1234 preview'"
show "hl7e replay --channel lab --status failed --since 1h --reason 'INC-1234 EHR back'"
wait_for 'the replay to be delivered' '[[ $(status_of backlog) == 0 && $(status_of deadLetters) == 0 ]]'
show 'hl7e status'
show "hl7e replay --channel lab --status failed --since 1h --reason 'INC-1234 EHR back'"

# --- the audit trail ---------------------------------------------------------------------------------
show 'hl7e audit list'
show 'HL7E_OPERATOR=ines hl7e audit list --since 1h'
show "HL7E_OPERATOR=ines hl7e audit verify --reason 'INC-1234 review'"

# Someone with access to the store rewrites an entry: PGlite is one process's, so the engine stops first.
SEQ=$(HL7E_OPERATOR=ines hl7e audit list --action messages.reveal --json | node -e "let t='';
  process.stdin.on('data',c=>t+=c).on('end',()=>console.log(JSON.parse(t).entries.find(e=>e.outcome==='allowed').seq))")
kill "$ENGINE_PID" && wait "$ENGINE_PID"
ENGINE_PID=''
(cd "$ROOT" && node --input-type=module -e "
  const { PGlite } = await import('@electric-sql/pglite');
  const db = await PGlite.create({ dataDir: '$HL7E_DATA_DIR/pglite' });
  await db.query(\"UPDATE audit_events SET reason = 'routine check' WHERE seq = $SEQ\");
  await db.close();")
start_engine
note "engine stopped; in its store: UPDATE audit_events SET reason = 'routine check' WHERE seq = $SEQ; engine started"
show 'HL7E_OPERATOR=ines hl7e audit verify'
