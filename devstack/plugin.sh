#!/bin/bash
#
# nova_search_ext DevStack plugin.
#
# stack install      the package into the Python environment Nova runs from
# stack post-config  nova.conf and the cell conductors' files (versioned
#                    notifications, the feed, the index), nova-api's
#                    api-paste.ini, the index database and its schema
#                    ("db sync", before any Nova service starts)
# stack extra        nova-search-indexer and nova-search-api when enabled,
#                    the search API in the catalog, "index sync" and
#                    "index verify"
# stack test-config  tempest.conf for the package's tempest plugin
# unstack            stop the plugin's services
# clean              remove the index file and the embedded feed's journals
#
# Settings: devstack/settings; NOVA_NOTIFICATION_FORMAT defaults to
# "versioned" (devstack/override-defaults).

# Save trace setting
_XTRACE_NOVA_SEARCH=$(set +o | grep xtrace)
set -o xtrace

# The index's SQLAlchemy URL.
function nova_search_index_connection {
    if [[ "$NOVA_SEARCH_INDEX_BACKEND" == "database" ]]; then
        database_connection_url nova_search_index
    else
        echo "sqlite:///$NOVA_SEARCH_INDEX_FILE"
    fi
}

# nova-search-manage with nova.conf.
function nova_search_manage {
    "$NOVA_BIN_DIR/nova-search-manage" --config-file "$NOVA_CONF" "$@"
}

# The configuration files Nova's services are started with: nova.conf
# (nova-api, the super conductor, the scheduler; nova-compute's
# nova-cpu.conf is copied from it when nova-compute starts) and, unless
# there is one conductor for everything, each cell conductor's file.
function nova_search_conf_files {
    echo "$NOVA_CONF"
    if [[ "$CELLSV2_SETUP" != "singleconductor" ]]; then
        local i
        for i in $(seq 1 "$NOVA_NUM_CELLS"); do
            conductor_conf "$i"
        done
    fi
}

# Refuse settings the plugin cannot work with, naming the variable.
function nova_search_check_settings {
    case "$NOVA_NOTIFICATION_FORMAT" in
        versioned|both) ;;
        *) die $LINENO "nova_search_ext needs NOVA_NOTIFICATION_FORMAT" \
               "versioned or both, not '$NOVA_NOTIFICATION_FORMAT'" ;;
    esac
    case "$NOVA_SEARCH_FEED" in
        embedded|rabbitmq) ;;
        *) die $LINENO "NOVA_SEARCH_FEED must be embedded or rabbitmq," \
               "not '$NOVA_SEARCH_FEED'" ;;
    esac
    case "$NOVA_SEARCH_CLIENT" in
        local|searchlight) ;;
        *) die $LINENO "NOVA_SEARCH_CLIENT must be local or searchlight," \
               "not '$NOVA_SEARCH_CLIENT'" ;;
    esac
    case "$NOVA_SEARCH_INDEX_BACKEND" in
        sqlite|database) ;;
        *) die $LINENO "NOVA_SEARCH_INDEX_BACKEND must be sqlite or" \
               "database, not '$NOVA_SEARCH_INDEX_BACKEND'" ;;
    esac
}

function install_nova_search_ext {
    setup_develop "$NOVA_SEARCH_EXT_DIR"
}

function configure_nova_search_ext {
    nova_search_check_settings
    if [[ "$NOVA_SEARCH_INDEX_BACKEND" == "database" ]]; then
        recreate_database nova_search_index
    else
        mkdir -p "$(dirname "$NOVA_SEARCH_INDEX_FILE")"
    fi
    local connection
    connection=$(nova_search_index_connection)

    local conf
    for conf in $(nova_search_conf_files); do
        iniset "$conf" notifications notification_format \
            "$NOVA_NOTIFICATION_FORMAT"
        # Without it Nova sends no instance.update, not even for a rename.
        iniset "$conf" notifications notify_on_state_change \
            vm_and_task_state
        # DevStack writes the cell conductors' files with their own RPC
        # bus only; notifications go where nova.conf sends them.
        iniset "$conf" oslo_messaging_notifications transport_url \
            "$(get_notification_url)"
        if [[ "$NOVA_SEARCH_FEED" == "embedded" ]]; then
            # A multi-valued option: one line per driver.
            iniset_multiline "$conf" oslo_messaging_notifications driver \
                messagingv2 nova_search_index
            iniset "$conf" search_index connection "$connection"
            # The cell conductors' files set no state_path, under which
            # the journal would otherwise go.
            iniset "$conf" search_index journal_dir \
                "$NOVA_SEARCH_JOURNAL_DIR"
        else
            iniset "$conf" oslo_messaging_notifications driver messagingv2
        fi
    done

    if [[ "$NOVA_SEARCH_FEED" == "rabbitmq" ]]; then
        # nova-api indexes its own notifications in-line as well, so that
        # a change made through the API is in the list when the request
        # returns; nova-search-indexer indexes everything.  The scheduler
        # and the super-conductor read nova.conf too and do the same.
        iniset_multiline "$NOVA_CONF" oslo_messaging_notifications driver \
            messagingv2 nova_search_index
        iniset "$NOVA_CONF" search_index journal_dir \
            "$NOVA_SEARCH_JOURNAL_DIR"
    fi

    # nova-api, and nova-search-indexer, nova-search-api and
    # nova-search-manage, which read nova.conf too.
    iniset "$NOVA_CONF" search_index connection "$connection"
    # The index schema, before any service that reads or writes the index
    # starts (none of them creates it).
    nova_search_manage db sync
    iniset "$NOVA_CONF" searchlight enabled True
    iniset "$NOVA_CONF" searchlight client "$NOVA_SEARCH_CLIENT"
    if [[ "$NOVA_SEARCH_CLIENT" == "searchlight" ]]; then
        configure_keystoneauth "$NOVA_CONF" nova searchlight
        iniset "$NOVA_CONF" searchlight region_name "$REGION_NAME"
    fi
    if is_service_enabled nova-search-api; then
        iniset "$NOVA_CONF" search_api bind_host "$SERVICE_LISTEN_ADDRESS"
        iniset "$NOVA_CONF" search_api bind_port "$NOVA_SEARCH_API_PORT"
    fi

    # The searchindex filter in nova-api's pipelines (adding it twice
    # changes nothing).
    local paste
    paste=$(mktemp)
    nova_search_manage api-paste --file "$NOVA_API_PASTE_INI" > "$paste"
    cat "$paste" > "$NOVA_API_PASTE_INI"
    rm -f "$paste"
}

function start_nova_search_ext {
    run_process nova-search-indexer \
        "$NOVA_BIN_DIR/nova-search-indexer --config-file $NOVA_CONF"
    if is_service_enabled nova-search-api; then
        run_process nova-search-api \
            "$NOVA_BIN_DIR/nova-search-api --config-file $NOVA_CONF"
        get_or_create_service searchlight search \
            "Search service (nova_search_ext)"
        get_or_create_endpoint search "$REGION_NAME" \
            "$SERVICE_PROTOCOL://$SERVICE_HOST:$NOVA_SEARCH_API_PORT"
        if ! wait_for_service "$SERVICE_TIMEOUT" \
                "$SERVICE_PROTOCOL://$SERVICE_HOST:$NOVA_SEARCH_API_PORT"; then
            die $LINENO "nova-search-api did not start"
        fi
    fi
}

# What Nova already holds into the index, then check it.  After the
# services start, so that nothing sent meanwhile is missed.
function init_nova_search_ext {
    nova_search_manage index sync
    nova_search_manage index verify
}

# tempest.conf: the package's tempest plugin
# (nova_search_ext.tempest_plugin) runs against this cloud.
function configure_tempest_nova_search_ext {
    iniset "$TEMPEST_CONFIG" service_available nova_search True
    iniset "$TEMPEST_CONFIG" nova_search index_lag "$NOVA_SEARCH_TEMPEST_LAG"
    if is_service_enabled nova-search-api; then
        iniset "$TEMPEST_CONFIG" nova_search search_api True
    fi
}

function stop_nova_search_ext {
    stop_process nova-search-api
    stop_process nova-search-indexer
}

function cleanup_nova_search_ext {
    if [[ "$NOVA_SEARCH_INDEX_BACKEND" == "sqlite" ]]; then
        rm -f "$NOVA_SEARCH_INDEX_FILE" "$NOVA_SEARCH_INDEX_FILE-wal" \
            "$NOVA_SEARCH_INDEX_FILE-shm"
    fi
    rm -rf "$NOVA_SEARCH_JOURNAL_DIR"
}

if [[ "$1" == "stack" && "$2" == "install" ]]; then
    echo_summary "Installing nova_search_ext"
    install_nova_search_ext
elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
    echo_summary "Configuring nova_search_ext"
    configure_nova_search_ext
elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
    echo_summary "Starting nova_search_ext"
    start_nova_search_ext
    init_nova_search_ext
elif [[ "$1" == "stack" && "$2" == "test-config" ]]; then
    if is_service_enabled tempest; then
        echo_summary "Configuring tempest for nova_search_ext"
        configure_tempest_nova_search_ext
    fi
fi

if [[ "$1" == "unstack" ]]; then
    stop_nova_search_ext
fi

if [[ "$1" == "clean" ]]; then
    cleanup_nova_search_ext
fi

# Restore xtrace
$_XTRACE_NOVA_SEARCH
