#!/usr/bin/env bash
# Deploy a small multi-process cloud on 127.0.0.1 and run tempest against
# it, with listing from the search index on and then off.
#
# What runs (each a process of its own, with its own configuration file,
# all under one run directory): keystone, placement, glance and
# neutron-server under gunicorn; nova-api (nova.wsgi.osapi_compute under
# gunicorn, keystonemiddleware, the searchindex paste filter); nova-scheduler;
# a super-conductor; one nova-conductor and two nova-compute (fake virt
# driver) for each of two cells, plus cell0, and a spare nova-compute in
# cell 1 for the plugin's service deletion test; nova-search-api.
# Databases on the local MariaDB, one RabbitMQ vhost per cell.  The
# embedded notification driver (nova_search_index) feeds the index, a
# database on the same MariaDB.  The tests: Nova's server list tests of
# tempest and the package's tempest plugin (nova_search_ext.tempest_plugin).
# See doc/source/contributor/tempest.rst.
#
# Everything is stopped and removed at the end (processes, databases,
# vhosts), also when a step fails; configuration files and the logs of
# every service stay in $NSE_TEMPEST_RUN (default .tempest-run/), logs
# under logs/.
#
# The last two lines are:
#   index on: N passed, N failed, N skipped; list requests served by the index: K, fallbacks: M
#   index off: N passed, N failed, N skipped
#
# Environment:
#   NSE_TEMPEST_RUN        run directory (default <repo>/.tempest-run)
#   NSE_TEMPEST_PREFIX     database and vhost name prefix (nse_tempest)
#   NSE_TEMPEST_PORT_BASE  first of the six TCP ports used (28700)
#   NSE_TEMPEST_REGEX      tempest test selection (default below)
#   NSE_TEMPEST_CONCURRENCY  tempest workers (2)
#   NSE_TEMPEST_FEED       embedded (default): the nova_search_index driver
#                          in every Nova service, nova-api reads the index
#                          itself; indexer: Nova sends to RabbitMQ,
#                          nova-search-indexer writes the index, nova-api
#                          also indexes its own notifications in-line (for
#                          read-your-writes) and queries nova-search-api
#                          ([searchlight] client = searchlight) with
#                          keystone tokens
#   NSE_TEMPEST_FAULTS     1 (with NSE_TEMPEST_FEED=indexer): during the
#                          index-on tempest run, stop nova-search-api for
#                          15 s, later nova-search-indexer for 15 s, start
#                          each again, run "index verify" once both are
#                          back, and report nova-api's warnings; nova-api
#                          retries the search API after 10 s (default 0)
#   NSE_TEMPEST_LATENCY    N > 0: after the tempest runs, boot, rename and
#                          delete N servers one at a time through nova-api,
#                          with the package, then with every Nova service
#                          restarted without it (stock Nova), and log what
#                          a user waits for (default 0: not measured)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
run=${NSE_TEMPEST_RUN:-$top/.tempest-run}
prefix=${NSE_TEMPEST_PREFIX:-nse_tempest}
port_base=${NSE_TEMPEST_PORT_BASE:-28700}
concurrency=${NSE_TEMPEST_CONCURRENCY:-2}
latency_samples=${NSE_TEMPEST_LATENCY:-0}
faults=${NSE_TEMPEST_FAULTS:-0}
# Set for the stock Nova phase: no service loads the package.
stock=
feed=${NSE_TEMPEST_FEED:-embedded}
case $feed in
    embedded|indexer) ;;
    *) echo "NSE_TEMPEST_FEED must be embedded or indexer, not $feed" >&2
       exit 2 ;;
esac
if [ "$faults" = 1 ] && [ "$feed" != indexer ]; then
    echo "NSE_TEMPEST_FAULTS=1 needs NSE_TEMPEST_FEED=indexer" >&2
    exit 2
fi
# Nova's server list, filter and paging tests, the negative list tests,
# the list tests of the create-server classes and of the microversion
# classes (2.47 to 2.100: list, show, update, rebuild), and the admin list
# tests.  44 tests.
default_regex='^tempest\.api\.compute\.('
default_regex+='servers\.test_list_server_filters\.'
default_regex+='|servers\.test_list_servers_negative\.'
default_regex+='|servers\.test_create_server\.(ServersTestJSON|ServersTestManualDisk)\.test_list'
default_regex+='|servers\.test_servers\.(ServersListShow|ServerShowV)[0-9]+Test\.test_[a-z_]*list'
default_regex+='|admin\.test_servers\.ServersAdminTestJSON\.test_list'
default_regex+='|admin\.test_servers_on_multinodes\.ServersOnMultiNodesTest\.test_[a-z_]*list'
default_regex+=')|^nova_search_ext\.tempest_plugin\.'
regex=${NSE_TEMPEST_REGEX:-$default_regex}

ks_port=$port_base
placement_port=$((port_base + 1))
glance_port=$((port_base + 2))
neutron_port=$((port_base + 3))
nova_port=$((port_base + 4))
search_port=$((port_base + 5))

etc=$run/etc
logs=$run/logs
state=$run/state
pids=$run/pids
password=nse-secret
db_url="mysql+pymysql://root@127.0.0.1"
rabbit="rabbit://guest:guest@127.0.0.1:5672"
cells="1 2"
# Nova's default scheduler filters plus the host hints a selected test uses.
filters=ComputeFilter,ComputeCapabilitiesFilter,ImagePropertiesFilter
filters+=,ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter
filters+=,DifferentHostFilter,SameHostFilter
computes_per_cell=2
spare_host=cell1-spare

started=$(date +%s)
say() { echo "[$(( $(date +%s) - started ))s] $*" >&2; }

# --- local services and the run directory ----------------------------------

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ensure_service() {  # name port start-command...
    local name=$1 port=$2
    shift 2
    port_open "$port" && return 0
    say "starting $name"
    "$@" >/dev/null 2>&1 || true
    for _ in $(seq 1 60); do port_open "$port" && return 0; sleep 1; done
    echo "$name did not come up on port $port" >&2
    return 1
}

mysql_root() { mysql -uroot -h127.0.0.1 --batch --skip-column-names "$@"; }

our_databases() {
    mysql_root -e "SELECT schema_name FROM information_schema.schemata
                   WHERE schema_name LIKE '${prefix}\\_%'"
}

our_vhosts() {
    rabbitmqctl list_vhosts --silent 2>/dev/null | grep "^${prefix}_" || true
}

# --- processes -------------------------------------------------------------

start() {  # name command...: a process group of its own, output to logs/
    local name=$1
    shift
    setsid "$@" >>"$logs/$name.log" 2>&1 < /dev/null &
    echo $! > "$pids/$name"
}

stop() {  # name...: TERM their process groups, KILL what runs after 30 s
    local name pid running groups=()
    for name in "$@"; do
        [ -f "$pids/$name" ] || continue
        pid=$(cat "$pids/$name")
        rm -f "$pids/$name"
        kill -TERM -- "-$pid" 2>/dev/null && groups+=("$pid")
    done
    for _ in $(seq 1 60); do
        running=0
        for pid in "${groups[@]}"; do
            kill -0 -- "-$pid" 2>/dev/null && running=1
        done
        [ "$running" = 0 ] && return 0
        sleep 0.5
    done
    for pid in "${groups[@]}"; do
        if kill -KILL -- "-$pid" 2>/dev/null; then
            say "process group $pid did not stop in 30 s; killed"
        fi
    done
}

alive() { [ -f "$pids/$1" ] && kill -0 "$(cat "$pids/$1")" 2>/dev/null; }

wait_http() {  # name port
    local name=$1 port=$2
    for _ in $(seq 1 180); do
        if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
            return 0
        fi
        if ! alive "$name"; then
            echo "$name exited; see $logs/$name.log" >&2
            tail -20 "$logs/$name.log" >&2
            return 1
        fi
        sleep 1
    done
    echo "$name is not answering on port $port" >&2
    return 1
}

gunicorn_start() {  # name port workers module [env...]
    local name=$1 port=$2 workers=$3 module=$4
    shift 4
    start "$name" env "$@" "$venv/bin/gunicorn" \
        --bind "127.0.0.1:$port" --workers "$workers" --timeout 300 \
        --graceful-timeout 30 --name "$name" \
        "nse_tempest_cloud.wsgi:load(\"$module\")"
}

cleanup_done=
cleanup() {
    [ -n "$cleanup_done" ] && return 0
    cleanup_done=1
    local name db vhost
    local files=("$pids"/*)
    [ -e "${files[0]}" ] && stop "${files[@]##*/}"
    for db in $(our_databases 2>/dev/null); do
        mysql_root -e "DROP DATABASE \`$db\`" || true
    done
    for vhost in $(our_vhosts); do
        rabbitmqctl delete_vhost "$vhost" >/dev/null 2>&1 </dev/null || true
    done
    rm -rf "$state"
}

# shellcheck disable=SC2329  # run by the EXIT trap
on_exit() {
    local rc=$?
    cleanup
    if [ -z "${finished:-}" ]; then
        echo "tools/run-tempest.sh failed (exit $rc) at: ${step:-set-up};" \
            "logs in $logs" >&2
        echo "index on: 0 passed, 1 failed, 0 skipped;" \
            "list requests served by the index: 0, fallbacks: 0"
        echo "index off: 0 passed, 1 failed, 0 skipped"
        exit 1
    fi
}

# --- configuration files ---------------------------------------------------

authtoken() {  # user
    cat <<EOF
[keystone_authtoken]
www_authenticate_uri = http://127.0.0.1:$ks_port/v3
auth_url = http://127.0.0.1:$ks_port/v3
auth_type = password
username = $1
password = $password
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = RegionOne
EOF
}

ksa_section() {  # group user
    cat <<EOF
[$1]
auth_type = password
auth_url = http://127.0.0.1:$ks_port/v3
username = $2
password = $password
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = RegionOne
valid_interfaces = public
EOF
}

write_keystone_conf() {
    mkdir -p "$etc/keystone" "$state/keystone"
    cat > "$etc/keystone/keystone.conf" <<EOF
[DEFAULT]
use_stderr = True
[database]
connection = $db_url/${prefix}_keystone?charset=utf8
[token]
provider = fernet
[fernet_tokens]
key_repository = $state/keystone/fernet-keys
[fernet_receipts]
key_repository = $state/keystone/fernet-keys
[credential]
key_repository = $state/keystone/credential-keys
EOF
}

write_placement_conf() {
    mkdir -p "$etc/placement"
    {
        cat <<EOF
[DEFAULT]
use_stderr = True
[placement_database]
connection = $db_url/${prefix}_placement?charset=utf8
[api]
auth_strategy = keystone
EOF
        authtoken placement
    } > "$etc/placement/placement.conf"
}

write_glance_conf() {
    mkdir -p "$etc/glance" "$state/glance/images" "$state/glance/staging" \
        "$state/glance/tasks"
    cp "$venv/etc/glance/glance-api-paste.ini" "$etc/glance/"
    {
        cat <<EOF
[DEFAULT]
use_stderr = True
enabled_backends = local:file
[database]
connection = $db_url/${prefix}_glance?charset=utf8
[glance_store]
default_backend = local
[local]
filesystem_store_datadir = $state/glance/images
[os_glance_staging_store]
filesystem_store_datadir = $state/glance/staging
[os_glance_tasks_store]
filesystem_store_datadir = $state/glance/tasks
[paste_deploy]
flavor = keystone
config_file = $etc/glance/glance-api-paste.ini
[oslo_concurrency]
lock_path = $state/glance
EOF
        authtoken glance
    } > "$etc/glance/glance-api.conf"
}

write_neutron_conf() {
    mkdir -p "$etc/neutron/plugins/ml2" "$state/neutron"
    cp "$venv/etc/neutron/api-paste.ini" "$etc/neutron/"
    {
        cat <<EOF
[DEFAULT]
use_stderr = True
core_plugin = ml2
service_plugins =
auth_strategy = keystone
api_paste_config = $etc/neutron/api-paste.ini
transport_url = $rabbit/${prefix}_neutron
notify_nova_on_port_status_changes = False
notify_nova_on_port_data_changes = False
state_path = $state/neutron
[database]
connection = $db_url/${prefix}_neutron?charset=utf8
[oslo_concurrency]
lock_path = $state/neutron
EOF
        authtoken neutron
    } > "$etc/neutron/neutron.conf"
    cat > "$etc/neutron/plugins/ml2/ml2_conf.ini" <<EOF
[ml2]
type_drivers = flat,vxlan
tenant_network_types = vxlan
mechanism_drivers = nse_bind_all
extension_drivers = port_security
[ml2_type_vxlan]
vni_ranges = 1:1000
[ml2_type_flat]
flat_networks = *
EOF
}

# The options every Nova service of this cloud shares.  $1: the RPC vhost
# (the top level or a cell's), $2: the [database] (cell0 or a cell's).
nova_common() {
    cat <<EOF
[DEFAULT]
use_stderr = True
transport_url = $rabbit/$1
my_ip = 127.0.0.1
graceful_shutdown_timeout = 10
[database]
connection = $db_url/$2?charset=utf8
[oslo_concurrency]
lock_path = $state/nova/locks
[notifications]
notification_format = versioned
notify_on_state_change = vm_and_task_state
[oslo_messaging_notifications]
transport_url = $rabbit/${prefix}_notify
driver = messagingv2
EOF
    if [ "$feed" = embedded ] && [ -z "$stock" ]; then
        echo "driver = nova_search_index"
    fi
    cat <<EOF
[search_index]
connection = $db_url/${prefix}_index?charset=utf8
journal_dir = $state/nova/journal
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = -1
[filter_scheduler]
enabled_filters = $filters
[vnc]
enabled = False
[glance]
region_name = RegionOne
valid_interfaces = public
EOF
    ksa_section placement nova
    ksa_section neutron nova
    # Neutron lets only a request carrying a service token with the
    # service role delete a port of a server.
    ksa_section service_user nova
    echo "send_service_user_token = True"
}

write_nova_confs() {
    local c n
    mkdir -p "$etc/nova" "$state/nova/locks" "$state/nova/journal"
    # nova-api (the only nova.conf in $etc/nova with api-paste.ini, as
    # nova.wsgi.osapi_compute reads them), the scheduler and the
    # super-conductor: the API database, cell0, the top-level vhost.
    {
        nova_common "${prefix}_top" "${prefix}_nova_cell0"
        cat <<EOF
[DEFAULT]
state_path = $state/nova
[api_database]
connection = $db_url/${prefix}_nova_api?charset=utf8
[searchlight]
enabled = True
stats_log_interval = 10
EOF
        authtoken nova
        if [ "$feed" = indexer ]; then
            # nova-api queries nova-search-api, found in the catalog, as
            # the nova user (an admin, as the search API requires).
            ksa_section searchlight nova
            echo "client = searchlight"
            if [ "$faults" = 1 ]; then
                # Ask the search API again 10 s after a failure rather
                # than only after a restart, so that both outages show.
                echo "retry_interval = 10"
            fi
        fi
        # nova-search-api runs in both configurations, for Searchlight's
        # users and the tempest plugin's search tests.
        cat <<EOF
[search_api]
bind_host = 127.0.0.1
bind_port = $search_port
workers = 1
auth_strategy = keystone
EOF
    } > "$etc/nova/nova.conf"
    # What nova-api alone reads on top of nova.conf.  With the indexer,
    # nova-api also indexes its own notifications in-line, so a change made
    # through the API is in the list when the request that made it
    # returns; the rest of the feed comes from nova-search-indexer.
    {
        echo "# nova-api only (OS_NOVA_CONFIG_FILES), after nova.conf"
        if [ "$feed" = indexer ] && [ -z "$stock" ]; then
            echo "[oslo_messaging_notifications]"
            echo "driver = nova_search_index"
        fi
    } > "$etc/nova/nova-api.conf"
    "$venv/bin/nova-search-manage" api-paste \
        --file "$venv/etc/nova/api-paste.ini" > "$etc/nova/api-paste.ini"
    for c in $cells; do
        mkdir -p "$etc/nova-cell$c"
        # The cell's services: its conductor, nova.conf + conductor.conf,
        # and its computes, nova.conf + computeN.conf ([database] is never
        # opened by nova-compute).
        {
            nova_common "${prefix}_cell$c" "${prefix}_nova_cell$c"
        } > "$etc/nova-cell$c/nova.conf"
        # The cell conductor as Nova lays it out: no API database.  The
        # embedded feed then reads from the conductor's own cell.
        cat > "$etc/nova-cell$c/conductor.conf" <<EOF
[DEFAULT]
state_path = $state/nova/cell$c-conductor
EOF
        for n in $(seq 1 "$computes_per_cell"); do
            mkdir -p "$state/nova/cell$c-compute$n"
            {
                nova_common "${prefix}_cell$c" "${prefix}_nova_cell$c"
                cat <<EOF
[DEFAULT]
host = cell$c-compute$n
compute_driver = fake.FakeDriverWithoutFakeNodes
state_path = $state/nova/cell$c-compute$n
instances_path = $state/nova/cell$c-compute$n/instances
EOF
            } > "$etc/nova-cell$c/compute$n.conf"
        done
    done
    # The spare compute of cell 1, whose service the plugin deletes.
    mkdir -p "$state/nova/spare"
    cat > "$etc/nova-cell1/spare.conf" <<EOF
[DEFAULT]
host = $spare_host
compute_driver = fake.FakeDriverWithoutFakeNodes
state_path = $state/nova/spare
instances_path = $state/nova/spare/instances
EOF
}

write_tempest_conf() {
    mkdir -p "$run/tempest"
    (cd "$run" && "$venv/bin/tempest" init \
        --workspace-path "$run/tempest-workspace.yaml" tempest >/dev/null)
    cat > "$run/tempest/etc/tempest.conf" <<EOF
[DEFAULT]
log_dir = $logs
log_file = tempest.log
[oslo_concurrency]
lock_path = $state/tempest-locks
[auth]
use_dynamic_credentials = True
create_isolated_networks = False
admin_username = admin
admin_password = $password
admin_project_name = admin
admin_domain_name = Default
default_credentials_domain_name = Default
[identity]
uri_v3 = http://127.0.0.1:$ks_port/v3
auth_version = v3
region = RegionOne
v3_endpoint_type = public
[identity-feature-enabled]
api_v2 = False
[compute]
image_ref = $image_ref
image_ref_alt = $image_ref_alt
flavor_ref = $flavor_ref
flavor_ref_alt = $flavor_ref_alt
fixed_network_name = $network_name
region = RegionOne
build_timeout = 120
min_compute_nodes = 4
max_microversion = latest
[compute-feature-enabled]
scheduler_enabled_filters = $filters
snapshot = False
console_output = False
change_password = False
vnc_console = False
spice_console = False
serial_console = False
rescue = False
resize = False
cold_migration = False
live_migration = False
suspend = False
pause = False
shelve = False
interface_attach = False
[network]
public_network_id =
project_networks_reachable = False
[service_available]
nova = True
nova_search = True
glance = True
neutron = True
cinder = False
swift = False
horizon = False
[validation]
run_validation = False
[image]
region = RegionOne
[network-feature-enabled]
ipv6 = False
[nova_search]
search_api = True
index_lag = 15
cell_hosts = $(for c in $cells; do printf 'cell%s-compute1,' "$c"; done | sed 's/,$//')
spare_compute_host = $spare_host
EOF
}

# --- the results ---------------------------------------------------------

# "passed failed skipped" from tempest's closing totals (an unexpected
# success counts as a failure; no totals at all as one failure).
tempest_numbers() {  # log
    awk '
        /^ - Passed: /  { p = $3; seen = 1 }
        /^ - Failed: /  { f = $3 }
        /^ - Skipped: / { s = $3 }
        /^ - Unexpected Success: / { f += $4 }
        END { if (!seen) f = 1; print p + 0, f + 0, s + 0 }
    ' "$1"
}

# What failed, for a CI log that keeps nothing but this script's output:
# each failed entry of tempest's stream with the lines after it (the
# traceback; a class's set-up or tear-down counts as an entry of its own),
# then tempest's own ERROR lines (a failed tear-down logs its resource
# there), both bounded.
tempest_failures() {  # log phase tempest.log-lines-before
    echo "--- tempest, $2: what failed (from $1)"
    awk '
        /^\{[0-9]+\} / { show = / \.\.\. FAILED$/ }
        /^=+$/ { show = 0 }
        show && n < 150 { print; n++ }
    ' "$1"
    echo "--- tempest, $2: tempest.log ERROR lines (last 40)"
    tail -n "+$(($3 + 1))" "$logs/tempest.log" 2>/dev/null |
        grep -E '^[0-9-]+ [0-9:.]+ [0-9]+ ERROR ' | tail -n 40 | cut -c1-400 || true
    echo "--- tempest, $2: end of what failed"
}

# The list counts nova-api logged ([searchlight] stats_log_interval): the
# last line of each worker, added up.  Prints "index fallback pending
# declined cells".
list_counts() {  # log
    grep -o 'Server lists since start (pid [0-9]*): .*' "$1" | awk '
        { pid = $6; sub(/\):/, "", pid); last[pid] = $0 }
        END {
            i = f = p = d = c = 0
            for (pid in last) {
                split(last[pid], w, /[ ,]+/)
                for (k = 1; k in w; k++) {
                    if (w[k] == "index") i += w[k + 1]
                    if (w[k] == "fallback") f += w[k + 1]
                    if (w[k] == "pending") p += w[k + 1]
                    if (w[k] == "declined") d += w[k + 1]
                    if (w[k] == "cells") c += w[k + 1]
                }
            }
            print i, f, p, d, c
        }'
}

# --- the flow --------------------------------------------------------------

trap on_exit EXIT

step="local services"
ensure_service rabbitmq 5672 rabbitmq-server -detached
ensure_service mariadb 3306 start-stop-daemon --start --oknodo \
    --background --exec /usr/sbin/mariadbd

step="virtualenv"
venv=$("$top/tools/ensure-venv.sh" cloud)
export PATH="$venv/bin:$PATH"

step="run directory"
# What an earlier run left, if it was killed before its own clean-up.
cleanup
cleanup_done=
rm -rf "$run"
mkdir -p "$etc" "$logs" "$state" "$pids"

step="databases and vhosts"
for db in keystone placement glance neutron nova_api nova_cell0 \
        nova_cell1 nova_cell2 index; do
    mysql_root -e "CREATE DATABASE ${prefix}_$db CHARACTER SET utf8"
done
for vhost in top cell1 cell2 notify neutron; do
    rabbitmqctl add_vhost "${prefix}_$vhost" >/dev/null
    rabbitmqctl set_permissions -p "${prefix}_$vhost" guest '.*' '.*' '.*' \
        >/dev/null
done

step="configuration files"
write_keystone_conf
write_placement_conf
write_glance_conf
write_neutron_conf
write_nova_confs

step="keystone"
say "keystone"
ksm() { keystone-manage --config-file "$etc/keystone/keystone.conf" "$@"; }
{
    ksm db_sync
    ksm fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
    ksm credential_setup --keystone-user "$(id -un)" \
        --keystone-group "$(id -gn)"
    ksm bootstrap --bootstrap-password "$password" \
        --bootstrap-region-id RegionOne \
        --bootstrap-public-url "http://127.0.0.1:$ks_port/v3" \
        --bootstrap-internal-url "http://127.0.0.1:$ks_port/v3" \
        --bootstrap-admin-url "http://127.0.0.1:$ks_port/v3"
} >>"$logs/bootstrap.log" 2>&1
gunicorn_start keystone "$ks_port" 2 keystone.wsgi.api \
    "OS_KEYSTONE_CONFIG_DIR=$etc/keystone"
wait_http keystone "$ks_port"

export OS_AUTH_URL="http://127.0.0.1:$ks_port/v3" OS_USERNAME=admin \
    OS_PASSWORD=$password
NSE_SERVICE_USERS="nova placement glance neutron" \
NSE_ENDPOINTS="placement=placement=http://127.0.0.1:$placement_port
image=glance=http://127.0.0.1:$glance_port
network=neutron=http://127.0.0.1:$neutron_port
compute=nova=http://127.0.0.1:$nova_port/v2.1
search=searchlight=http://127.0.0.1:$search_port" \
    python -m nse_tempest_cloud.bootstrap identity

step="placement, glance, neutron"
say "placement, glance, neutron"
{
    placement-manage --config-file "$etc/placement/placement.conf" db sync
    glance-manage --config-file "$etc/glance/glance-api.conf" db_sync
    neutron-db-manage --config-file "$etc/neutron/neutron.conf" \
        --config-file "$etc/neutron/plugins/ml2/ml2_conf.ini" upgrade heads
} >>"$logs/bootstrap.log" 2>&1
gunicorn_start placement "$placement_port" 1 placement.wsgi.api \
    "OS_PLACEMENT_CONFIG_DIR=$etc/placement"
gunicorn_start glance "$glance_port" 1 glance.wsgi.api \
    "OS_GLANCE_CONFIG_DIR=$etc/glance"
gunicorn_start neutron "$neutron_port" 2 neutron.wsgi.api \
    "OS_NEUTRON_CONFIG_DIR=$etc/neutron"
wait_http placement "$placement_port"
wait_http glance "$glance_port"
wait_http neutron "$neutron_port"
# Set by the bootstrap steps' "name=value" lines.
image_ref='' image_ref_alt='' network_name='' flavor_ref='' flavor_ref_alt=''
eval "$(python -m nse_tempest_cloud.bootstrap image)"
eval "$(python -m nse_tempest_cloud.bootstrap network)"

step="nova databases and cells"
say "nova databases and cells"
nm() { nova-manage --config-file "$etc/nova/nova.conf" "$@"; }
{
    nm api_db sync
    nm cell_v2 map_cell0 \
        --database_connection "$db_url/${prefix}_nova_cell0?charset=utf8"
    for c in $cells; do
        nm cell_v2 create_cell --name "cell$c" \
            --transport-url "$rabbit/${prefix}_cell$c" \
            --database_connection "$db_url/${prefix}_nova_cell$c?charset=utf8"
    done
    nm db sync
    for c in $cells; do
        nova-manage --config-file "$etc/nova-cell$c/nova.conf" db sync \
            --local_cell
    done
    nm cell_v2 list_cells
    nova-search-manage --config-file "$etc/nova/nova.conf" db sync
    nova-search-manage --config-file "$etc/nova/nova.conf" index sync
} >>"$logs/bootstrap.log" 2>&1

step="nova services"
say "nova services"
start_nova_backends() {
    start nova-super-conductor nova-conductor \
        --config-file "$etc/nova/nova.conf"
    for c in $cells; do
        start "nova-conductor-cell$c" nova-conductor \
            --config-file "$etc/nova-cell$c/nova.conf" \
            --config-file "$etc/nova-cell$c/conductor.conf"
    done
    start nova-scheduler nova-scheduler --config-file "$etc/nova/nova.conf"
}
start_computes() {
    local c n
    for c in $cells; do
        for n in $(seq 1 "$computes_per_cell"); do
            start "nova-compute-cell$c-$n" nova-compute \
                --config-file "$etc/nova-cell$c/nova.conf" \
                --config-file "$etc/nova-cell$c/compute$n.conf"
        done
    done
}
start_nova_backends
start_nova_api() {  # log name
    gunicorn_start "$1" "$nova_port" 2 nova.wsgi.osapi_compute \
        "OS_NOVA_CONFIG_DIR=$etc/nova" \
        "OS_NOVA_CONFIG_FILES=api-paste.ini;nova.conf;nova-api.conf"
    wait_http "$1" "$nova_port"
}
if [ "$feed" = indexer ]; then
    start nova-search-indexer nova-search-indexer \
        --config-file "$etc/nova/nova.conf"
fi
start nova-search-api nova-search-api --config-file "$etc/nova/nova.conf"
wait_http nova-search-api "$search_port"
start_nova_api nova-api-index-on
start_computes
want=$(( $(echo "$cells" | wc -w) * computes_per_cell ))
for _ in $(seq 1 120); do
    nm cell_v2 discover_hosts >>"$logs/bootstrap.log" 2>&1 || true
    mapped=$(mysql_root -e "SELECT COUNT(*) FROM ${prefix}_nova_api.host_mappings")
    [ "$mapped" -ge "$want" ] && break
    sleep 2
done
[ "$mapped" -ge "$want" ] || { echo "only $mapped of $want computes" >&2; exit 1; }
say "$mapped compute hosts in $(echo "$cells" | wc -w) cells"
eval "$(python -m nse_tempest_cloud.bootstrap flavors)"
ps -o rss= -p "$(pgrep -d, -s "$(cat "$pids"/* | tr '\n' ',' | sed 's/,$//')" || true)" \
    2>/dev/null | awk '{ s += $1 } END { printf "%d MB\n", s / 1024 }' \
    > "$run/rss" || true
say "the cloud is up ($(cat "$run/rss") RSS)"

step="tempest.conf"
write_tempest_conf

run_tempest() {  # phase
    local log="$logs/tempest-$1.log" t0=$SECONDS before
    before=0
    if [ -f "$logs/tempest.log" ]; then
        before=$(wc -l < "$logs/tempest.log")
    fi
    say "tempest, $1"
    (cd "$run/tempest" && tempest run --regex "$regex" \
        --concurrency "$concurrency") > "$log" 2>&1 || true
    read -r passed failed skipped < <(tempest_numbers "$log")
    say "tempest, $1: $passed passed, $failed failed, $skipped skipped" \
        "in $((SECONDS - t0)) s"
    [ "$failed" = 0 ] || tempest_failures "$log" "$1" "$before" >&2
}

# The spare compute of cell 1: started until the API database and the
# index know its service, then disabled and stopped, for the plugin's test
# that deletes a service.  Its state directory is new each time, so a
# restart after that deletion registers a new compute node.
spare_up() {
    local known=0 mapped=0
    rm -rf "$state/nova/spare"
    mkdir -p "$state/nova/spare"
    start nova-compute-spare nova-compute \
        --config-file "$etc/nova-cell1/nova.conf" \
        --config-file "$etc/nova-cell1/spare.conf"
    for _ in $(seq 1 60); do
        nm cell_v2 discover_hosts >>"$logs/bootstrap.log" 2>&1 || true
        known=$(mysql_root -e "SELECT COUNT(*) FROM ${prefix}_index.index_services
            WHERE host = '$spare_host' AND deleted = 0")
        mapped=$(mysql_root -e "SELECT COUNT(*) FROM ${prefix}_nova_api.host_mappings
            WHERE host = '$spare_host'")
        [ "$known" -ge 1 ] && [ "$mapped" -ge 1 ] && break
        sleep 2
    done
    if [ "$known" -lt 1 ] || [ "$mapped" -lt 1 ]; then
        echo "the spare compute did not register (index $known," \
            "mapped $mapped)" >&2
        exit 1
    fi
    NSE_SPARE_HOST=$spare_host python -m nse_tempest_cloud.bootstrap \
        disable-spare
    stop nova-compute-spare
    say "spare compute $spare_host registered, disabled and stopped"
}

# Boots, renames and deletes one at a time (NSE_TEMPEST_LATENCY).
measure_latency() {  # label
    local line
    say "latency, $1: $latency_samples servers"
    NSE_IMAGE=$image_ref NSE_FLAVOR=$flavor_ref NSE_NETWORK=$network_name \
        python -m nse_tempest_cloud.latency "$1" "$latency_samples" \
        > "$logs/latency-$1.log" 2>&1 || say "latency, $1: failed"
    while read -r line; do
        say "$line"
    done < <(grep -v '^latency-json' "$logs/latency-$1.log")
}

# Outages of the second configuration's own services while tempest runs
# (NSE_TEMPEST_FAULTS=1), in the background.
inject_faults() {
    sleep 20
    say "fault: nova-search-api stopped for 15 s"
    stop nova-search-api
    sleep 15
    start nova-search-api nova-search-api --config-file "$etc/nova/nova.conf"
    wait_http nova-search-api "$search_port"
    say "fault: nova-search-api is back"
    sleep 10
    say "fault: nova-search-indexer stopped for 15 s"
    stop nova-search-indexer
    sleep 15
    start nova-search-indexer nova-search-indexer \
        --config-file "$etc/nova/nova.conf"
    say "fault: nova-search-indexer is back"
    sleep 10
    nova-search-manage --config-file "$etc/nova/nova.conf" index verify \
        > "$logs/index-verify-after-faults.log" 2>&1 || true
    say "fault: $(tail -1 "$logs/index-verify-after-faults.log")"
}

step="tempest, index on"
spare_up
fault_pid=
if [ "$faults" = 1 ]; then
    inject_faults &
    fault_pid=$!
fi
run_tempest index-on
if [ -n "$fault_pid" ]; then
    wait "$fault_pid" || true
    say "fault: nova-api logged $(grep -c 'WARNING nova_search_ext' \
        "$logs/nova-api-index-on.log" || true) warning(s) of the package"
fi
if [ "$latency_samples" -gt 0 ]; then
    step="latency, with the package"
    measure_latency package
fi
nova-search-manage --config-file "$etc/nova/nova.conf" index verify \
    > "$logs/index-verify.log" 2>&1 || true
stop nova-api-index-on
read -r k fallback pending declined cells_count \
    < <(list_counts "$logs/nova-api-index-on.log")
say "nova-api, index on: index $k, fallback $fallback, pending $pending," \
    "declined $declined, cells $cells_count"
on_passed=$passed on_failed=$failed on_skipped=$skipped
on_line="index on: $on_passed passed, $on_failed failed, $on_skipped skipped;"
on_line="$on_line list requests served by the index: $k,"
on_line="$on_line fallbacks: $((fallback + pending))"

step="tempest, index off"
sed -i 's/^enabled = True$/enabled = False/' "$etc/nova/nova.conf"
start_nova_api nova-api-index-off
spare_up
run_tempest index-off
off_line="index off: $passed passed, $failed failed, $skipped skipped"
if [ "$latency_samples" -gt 0 ]; then
    # Stock Nova: every Nova service restarted without the package (no
    # notification driver of ours, Nova's own api-paste.ini), the same
    # processes, databases and bus otherwise.
    step="latency, stock Nova"
    say "restarting every Nova service without the package"
    nova_processes=(nova-api-index-off nova-super-conductor nova-scheduler)
    for c in $cells; do
        nova_processes+=("nova-conductor-cell$c")
        for n in $(seq 1 "$computes_per_cell"); do
            nova_processes+=("nova-compute-cell$c-$n")
        done
    done
    stop "${nova_processes[@]}"
    stock=1
    write_nova_confs
    cp "$venv/etc/nova/api-paste.ini" "$etc/nova/api-paste.ini"
    start_nova_backends
    start_nova_api nova-api-stock
    start_computes
    # Let the computes report and the scheduler see them again.
    sleep 20
    measure_latency stock
fi

# Green: no failure in either run, the same tests passed in both, the index
# served lists and nothing fell back (outside a fault run).
# With NSE_TEMPEST_FAULTS=1 the outages make lists fall back by design.
rc=0
if [ "$on_failed" != 0 ] || [ "$failed" != 0 ] || \
        [ "$on_passed" != "$passed" ] || [ "$k" = 0 ] || \
        { [ "$faults" != 1 ] && [ "$((fallback + pending))" != 0 ]; }; then
    rc=1
fi

step="tear-down"
say "tearing down"
cleanup
finished=1
say "done; logs in $logs"
echo "$on_line"
echo "$off_line"
exit $rc
