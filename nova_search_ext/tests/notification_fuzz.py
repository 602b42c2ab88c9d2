#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.
"""Randomly mutated copies of Nova's real notifications, with their verdict.

The fuzz tests of the notification endpoint (unit, and the indexer on
RabbitMQ) feed it notifications built here from Nova's own notification
samples (``doc/notification_samples`` of the installed Nova's sdist, see
:mod:`nova_search_ext.tests.nova_sdist`, plus ours).  Each :class:`Case`
knows what the endpoint must do with it, because the mutations are chosen
in three phases whose effect is known by construction, not by running the
code under test:

1. *kind changes* (sometimes): another event type of the same family,
   another service action, a service payload downgraded to 1.0, an event
   type the endpoint does not index;
2. *harmless mutations* (0 to 4): they only touch what the endpoint does
   not read (the rest of an instance payload, extra keys at every level,
   message ids, timestamps, publishers, context), or change what it reads
   into another valid value (a newer minor version, another instance
   payload class with its own version, valid service field values);
3. for a case meant to be bad, *one breaking mutation* of something the
   endpoint reads for that kind: the envelope, the event type, the
   payload's ``nova_object.*`` keys, the instance uuid, a service field.

The verdict is one of ``bad`` (must be counted ``malformed``),
``instance``, ``service`` (1.1, by uuid), ``service10`` (1.0, by host and
binary) and ``ignored`` (an event type the endpoint does not index, or a
service action other than create/update/delete).  Values come from the
usual suspects: every JSON type, deep nesting, 100 KB strings, lone
surrogates, NUL, right-to-left marks and overrides, emoji, and (outside
``json_safe``) bytes, NaN and integers too long to print.

The randomness comes from one seed per test (:class:`SeededTest`, from
:mod:`nova_search_ext.tests.seeds`): printed on the test's output and in
every failure message; ``NSE_SEED``, or the fuzz tests' own
``NSE_FUZZ_SEED``, replays a run.
"""

import copy
import glob
import json
import os
import random
import reprlib
import uuid as uuid_lib

from nova.tests import json_ref

from nova_search_ext.tests import nova_sdist
from nova_search_ext.tests import seeds

SEED_ENV = 'NSE_FUZZ_SEED'
OUR_SAMPLES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), 'doc', 'notification_samples')
FAMILIES = ('instance', 'service', 'compute_task')
FILTER_PREFIXES = ('instance.', 'service.', 'compute_task.')
KB100 = 100 * 1024
PRIORITIES = ('audit', 'debug', 'info', 'warn', 'error', 'critical',
              'sample')


def short(value, limit=300):
    """A printable, bounded repr of anything, for failure messages."""
    try:
        text = reprlib.repr(value)
    except Exception:  # noqa: e.g. an int too long to print
        text = '<%s>' % type(value).__name__
    return ascii(text[:limit])


def make_rng():
    """(seed, random.Random): $NSE_SEED, then $NSE_FUZZ_SEED, else fresh."""
    seed = seeds.choose(env=SEED_ENV)
    return seed, random.Random(seed)


class SeededTest(seeds.SeededTest):
    """:class:`seeds.SeededTest` with the fuzz tests' ``NSE_FUZZ_SEED``."""

    def use_seed(self, env=SEED_ENV, default=None):
        return super().use_seed(env=env, default=default)


def _load(directory):
    result = []
    for path in sorted(glob.glob(os.path.join(directory, '*.json'))):
        with open(path) as f:
            sample = json.load(f)
        result.append(json_ref.resolve_refs(sample, directory))
    return result


def samples():
    """Nova's notification samples (resolved), ours added."""
    found = _load(nova_sdist.notification_samples_dir())
    found += _load(OUR_SAMPLES)
    for sample in found:
        sample.pop('$schema', None)
    return found


class Case(object):
    """One mutated notification and what the endpoint must do with it.

    :ivar message: what a batch endpoint is handed (a dict with ``ctxt``,
                   ``publisher_id``, ``event_type``, ``payload``,
                   ``metadata`` and, with ``wire``, ``priority``), or
                   anything else when the envelope itself is broken
    :ivar verdict: bad, instance, service, service10 or ignored
    :ivar key: the instance uuid, the service uuid, or (host, binary)
    :ivar action: create/update/delete for services
    :ivar mutations: the names of the mutations applied, for messages
    """

    def __init__(self, message, verdict, key=None, action=None,
                 mutations=()):
        self.message = message
        self.verdict = verdict
        self.key = key
        self.action = action
        self.mutations = list(mutations)

    @property
    def bad(self):
        return self.verdict == 'bad'

    @property
    def filtered(self):
        """True if the listener's filter keeps it from the endpoint."""
        if not isinstance(self.message, dict):
            return False
        event_type = self.message.get('event_type')
        return isinstance(event_type, str) and \
            not event_type.startswith(FILTER_PREFIXES)

    def wire_body(self):
        """The message as oslo.messaging's notifier sends it."""
        msg = self.message
        if not isinstance(msg, dict):
            return msg
        body = {key: value for key, value in msg.items()
                if key not in ('ctxt', 'metadata')}
        metadata = msg.get('metadata') or {}
        for key in ('message_id', 'timestamp'):
            if key in metadata:
                body[key] = metadata[key]
        return body

    def describe(self):
        return '%s via %s' % (self.verdict, ', '.join(self.mutations) or
                              'no mutation')


class Identities(object):
    """Uuids (and service hosts) for the cases; fresh random ones here.

    The RabbitMQ test subclasses it to hand good cases real instances.
    """

    def __init__(self, rng):
        self.rng = rng

    def fresh(self):
        return str(uuid_lib.UUID(int=self.rng.getrandbits(128), version=4))

    def instance(self, good):
        return self.fresh()

    def service(self, good, action):
        """(uuid, host, binary) for a service payload."""
        return self.fresh(), 'compute-%d' % self.rng.randrange(1000), \
            'nova-compute'


class KnownIdentities(Identities):
    """One good case per known instance; fresh uuids once they run out.

    :param instances: uuids of instances the cells hold
    :param services: ``(uuid, host, binary)`` of services the cells hold
    """

    def __init__(self, rng, instances, services):
        super().__init__(rng)
        self.instances = list(instances)
        self.services = services

    def instance(self, good):
        if good and self.instances:
            return self.instances.pop()
        return self.fresh()

    def service(self, good, action):
        if good and action != 'delete':
            return self.rng.choice(self.services)
        return super().service(good, action)


class Mutator(object):
    """Build :class:`Case` objects from Nova's samples.

    :param rng: a random.Random
    :param templates: notification samples (:func:`samples`)
    :param wire: build messages as the listener's dispatcher sees them
                 (with their ``priority``, no metadata damage)
    :param json_safe: only values JSON can carry (for the real bus)
    :param bad_ratio: share of cases meant to be bad
    :param identities: an :class:`Identities`
    :param envelope_damage: also replace whole messages by non-dicts
    :param priority_damage: with ``wire``, also break priorities
    """

    def __init__(self, rng, templates, wire=False, json_safe=False,
                 bad_ratio=0.5, identities=None, envelope_damage=True,
                 priority_damage=True):
        self.rng = rng
        self.envelope_damage = envelope_damage
        self.priority_damage = priority_damage
        self.wire = wire
        self.json_safe = json_safe
        self.bad_ratio = bad_ratio
        self.ids = identities or Identities(rng)
        self.templates = {'instance': [], 'service': [], 'ignored': []}
        self.majors = {}
        self.classes = {}
        self.event_types = {'instance': set(), 'ignored': set()}
        self.service_fields = None
        for t in templates:
            family = t['event_type'].split('.', 1)[0]
            payload = t['payload']
            if family == 'service':
                self.templates['service'].append(t)
                self.service_fields = payload['nova_object.data']
            elif family in FAMILIES:
                self.templates['instance'].append(t)
                self.event_types['instance'].add(t['event_type'])
                name = payload['nova_object.name']
                self.classes[name] = payload['nova_object.version']
                self.majors[name] = int(
                    payload['nova_object.version'].split('.')[0])
            else:
                self.templates['ignored'].append(t)
                self.event_types['ignored'].add(t['event_type'])
        self.event_types = {k: sorted(v) for k, v in self.event_types.items()}
        self.counter = 0

    # Values ----------------------------------------------------------------

    def text(self):
        """A string of any content (valid or not as a database value)."""
        rng = self.rng
        return rng.choice([
            '', ' ', 'x', 'ü', '\ud800', '\udfff', 'a\ud800b', '\x00',
            'a\x00b', '\u202eevil', '\u200fmark', '\U0001F4A9',
            'Ω≈ç√∫', 'e\u0301\u0301\u0301', '\n\t\r', '\\', '"\'',
            'x' * KB100, ('\U0001F600ü\u202e' * (KB100 // 3)),
            'null', 'None', '{}', '[]', '1.0', '%s%d%(x)s',
            str(rng.random()),
        ])

    def valid_db_text(self):
        """A host or binary any database can take (1-255 chars)."""
        return self.rng.choice([
            'compute-ü', 'host\U0001F600', 'h' * 255, 'RTL\u202ehost',
            'Ω', 'x', 'node.example.com', 'e\u0301', 'a b',
        ])

    def deep(self, depth):
        value = self.text() if depth % 2 else None
        for _ in range(depth):
            value = [value] if self.rng.random() < 0.5 else {'k': value}
        return value

    def junk(self, allow_none=True):
        """Any value: every JSON type, nesting, sizes, unicode."""
        rng = self.rng
        choices = [
            lambda: True, lambda: False, lambda: 0, lambda: -1,
            lambda: 2 ** 63, lambda: 2 ** 64 + 1, lambda: 1.5,
            lambda: 1e308, lambda: -0.0, self.text, self.text, self.text,
            lambda: [], lambda: {}, lambda: [self.text(), 1, None],
            lambda: {'nova_object.name': ['x']},
            lambda: {self.text(): self.text()},
            lambda: self.deep(rng.randrange(1, 60)),
            lambda: [rng.random() for _ in range(rng.randrange(1, 200))],
        ]
        if allow_none:
            choices.append(lambda: None)
        if not self.json_safe:
            choices += [lambda: b'bytes\xff', lambda: float('nan'),
                        lambda: 10 ** 5000, lambda: (1, 2),
                        lambda: {1: 'int key'}, lambda: {1, 2}]
        return rng.choice(choices)()

    def non_str(self):
        value = self.junk()
        while isinstance(value, str):
            value = self.junk()
        return value

    def non_dict(self):
        value = self.junk()
        while isinstance(value, dict) or value is None:
            value = self.junk()
        return value

    def bad_uuid(self, good):
        rng = self.rng
        return rng.choice([
            good.upper(), '{%s}' % good, good.replace('-', ''),
            'urn:uuid:%s' % good, ' %s' % good, '%s\n' % good, good[:-1],
            good + '0', good + '\ud800', good[:8] + '\x00' + good[9:],
            good + '\u202e', '\U0001F4A9' + good[1:], 'x' * KB100,
            good + 'x' * KB100, 'not-a-uuid', '', '0' * 36,
            good.replace('-', '_'),
        ])

    # Cases -----------------------------------------------------------------

    def case(self):
        """A new :class:`Case`."""
        self.counter += 1
        rng = self.rng
        family = rng.choices(['instance', 'service', 'ignored'],
                             weights=[6, 3, 1])[0]
        template = copy.deepcopy(rng.choice(self.templates[family]))
        message = {
            'ctxt': {}, 'publisher_id': template['publisher_id'],
            'event_type': template['event_type'],
            'payload': template['payload'],
            'metadata': {'message_id': 'fuzz-%d' % self.counter,
                         'timestamp': '2026-01-01 00:00:00.%06d' %
                         self.counter}}
        if self.wire:
            message['priority'] = template['priority']
        case = Case(message, family)
        if family == 'service':
            case.verdict = 'service'
            case.action = message['event_type'].split('.', 1)[1]
        # 1. Kind changes.
        if rng.random() < 0.2 and family != 'ignored':
            self._change_kind(case)
        bad = rng.random() < self.bad_ratio
        self._identify(case, good=not bad)
        # 2. Harmless mutations.
        for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4])):
            self._harmless(case)
        # 3. One breaking mutation.
        if bad:
            self._break(case)
            case.verdict = 'bad'
        return case

    def cases(self, n):
        return [self.case() for _ in range(n)]

    def _data(self, case):
        return case.message['payload']['nova_object.data']

    def _read_field(self, case):
        name = case.message['payload']['nova_object.name']
        return 'instance_uuid' if name == 'ComputeTaskPayload' else 'uuid'

    def _identify(self, case, good):
        if case.verdict == 'instance':
            case.key = self.ids.instance(good)
            self._data(case)[self._read_field(case)] = case.key
        elif case.verdict in ('service', 'service10'):
            uuid, host, binary = self.ids.service(good, case.action)
            data = self._data(case)
            data.update(uuid=uuid, host=host, binary=binary)
            case.key = uuid if case.verdict == 'service' else (host, binary)

    def _change_kind(self, case):
        rng = self.rng
        msg = case.message
        choices = ['foreign']
        if case.verdict == 'instance':
            choices += ['instance_event'] * 3
        else:
            choices += ['service_action', 'service_action', 'unknown_action',
                        'service10']
        what = rng.choice(choices)
        case.mutations.append('kind:' + what)
        if what == 'foreign':
            msg['event_type'] = rng.choice(self.event_types['ignored'] + [
                'Instance.update', 'instances.update', 'instance', 'service',
                '', 'compute.instance.update', 'instance_foo.bar',
                'x' * KB100, '\ud800instance.update', ' service.create',
                'SERVICE.create'])
            case.verdict = 'ignored'
            case.action = None
        elif what == 'instance_event':
            msg['event_type'] = rng.choice(self.event_types['instance'] + [
                'instance.x', 'instance.a_1.b_2', 'compute_task.rebuild',
                'instance.' + 'a' * 200])
        elif what == 'service_action':
            case.action = rng.choice(['create', 'update', 'delete'])
            msg['event_type'] = 'service.' + case.action
        elif what == 'unknown_action':
            msg['event_type'] = rng.choice([
                'service.restart', 'service.create.end', 'service.x',
                'service.delete_all'])
            case.verdict = 'ignored'
            case.action = None
        else:
            msg['payload']['nova_object.version'] = '1.0'
            case.verdict = 'service10'

    # Harmless -----------------------------------------------------------

    def _harmless(self, case):
        rng = self.rng
        ops = ['meta_id', 'meta_extra', 'timestamp', 'publisher', 'ctxt',
               'top_extra', 'metadata_none']
        if self.wire:
            ops.append('priority_case')
        if case.verdict == 'ignored':
            ops += ['any_payload'] * 3
        elif case.verdict == 'instance':
            ops += ['data_field'] * 4 + ['data_extra', 'nested',
                                         'payload_extra', 'minor',
                                         'class_swap', 'unread_uuid']
        else:
            ops += ['svc_field'] * 4 + ['data_extra', 'payload_extra']
            if case.verdict == 'service':
                ops.append('svc_minor')
        op = rng.choice(ops)
        msg = case.message
        case.mutations.append(op)
        if op in ('meta_id', 'meta_extra', 'timestamp') and \
                msg['metadata'] is None:
            msg['metadata'] = {}
        if op == 'meta_id':
            msg['metadata']['message_id'] = self.junk()
        elif op == 'meta_extra':
            msg['metadata'][self.text()] = self.junk()
        elif op == 'timestamp':
            if rng.random() < 0.5:
                msg['metadata'].pop('timestamp', None)
            else:
                msg['metadata']['timestamp'] = self.junk()
        elif op == 'publisher':
            if rng.random() < 0.3:
                msg.pop('publisher_id', None)
            else:
                msg['publisher_id'] = self.junk()
        elif op == 'ctxt':
            msg['ctxt'] = self.junk()
        elif op == 'top_extra':
            msg['x_fuzz_%d' % rng.randrange(100)] = self.junk()
        elif op == 'metadata_none':
            # Only where a message id is not needed any more.
            if not self.wire:
                msg['metadata'] = None
        elif op == 'priority_case':
            priority = rng.choice(PRIORITIES)
            msg['priority'] = rng.choice([priority, priority.upper(),
                                          priority.title()])
        elif op == 'any_payload':
            msg['payload'] = self.junk()
        elif op == 'data_field':
            data = self._data(case)
            keep = self._read_field(case)
            keys = [k for k in data if k != keep]
            if keys:
                key = rng.choice(keys)
                if rng.random() < 0.3:
                    del data[key]
                else:
                    data[key] = self.junk()
        elif op == 'data_extra':
            data = self._data(case)
            key = 'x_fuzz_%s' % rng.randrange(1000)
            if case.verdict == 'instance' and rng.random() < 0.5:
                key = self.text()
                if key in ('uuid', 'instance_uuid'):
                    key = 'not_' + key
            data[key] = self.junk()
        elif op == 'nested':
            self._mutate_nested(case)
        elif op == 'payload_extra':
            key = rng.choice(['nova_object.changes', 'x_fuzz', 'extra'])
            case.message['payload'][key] = self.junk()
        elif op == 'minor':
            payload = msg['payload']
            major = payload['nova_object.version'].split('.')[0]
            payload['nova_object.version'] = '%s.%d' % (
                major, rng.choice([0, 1, 9, 99, 9999]))
        elif op == 'class_swap':
            name = rng.choice(sorted(self.classes))
            payload = msg['payload']
            payload['nova_object.name'] = name
            payload['nova_object.version'] = self.classes[name]
            self._data(case)[self._read_field(case)] = case.key
        elif op == 'unread_uuid':
            other = ('uuid' if self._read_field(case) == 'instance_uuid'
                     else 'instance_uuid')
            self._data(case)[other] = self.junk()
        elif op == 'svc_field':
            self._harmless_service_field(case)
        elif op == 'svc_minor':
            msg['payload']['nova_object.version'] = '1.%d' % rng.choice(
                [1, 2, 9, 99, 9999])

    def _mutate_nested(self, case):
        """Change, drop or add something deep inside the unread data."""
        rng = self.rng
        data = self._data(case)
        keep = self._read_field(case)
        node = data
        for _ in range(rng.randrange(1, 8)):
            if isinstance(node, dict):
                keys = [k for k in node if node is not data or k != keep]
                if not keys:
                    break
                child = node[rng.choice(keys)]
            elif isinstance(node, list) and node:
                child = rng.choice(node)
            else:
                break
            if not isinstance(child, (dict, list)):
                break
            node = child
        if isinstance(node, dict):
            keys = [k for k in node if node is not data or k != keep]
            roll = rng.random()
            if keys and roll < 0.3:
                del node[rng.choice(keys)]
            elif keys and roll < 0.7:
                node[rng.choice(keys)] = self.junk()
            else:
                key = 'x_fuzz_nested'
                node[key] = self.junk()
        elif isinstance(node, list):
            node.append(self.junk())

    def _harmless_service_field(self, case):
        rng = self.rng
        data = self._data(case)
        name = rng.choice(['topic', 'disabled_reason', 'availability_zone',
                           'report_count', 'version', 'disabled',
                           'forced_down', 'last_seen_up', 'host', 'binary'] +
                          (['uuid'] if case.verdict == 'service10' else []))
        if name in ('topic', 'disabled_reason', 'availability_zone'):
            data[name] = None if rng.random() < 0.2 else self.text()
        elif name in ('report_count', 'version'):
            data[name] = rng.choice([0, -1, 7, 2 ** 31, 2 ** 63, 10 ** 30])
        elif name in ('disabled', 'forced_down'):
            data[name] = rng.choice([True, False])
        elif name == 'last_seen_up':
            data[name] = rng.choice([None, '2012-10-29T13:42:05Z',
                                     '2026-02-03T04:05:06.123456+00:00'])
        elif name == 'uuid':
            # Not read from a 1.0 payload.
            data[name] = self.junk()
        elif case.verdict == 'service':
            # Only a hint to find the cell: any valid value or none.
            data[name] = (None if rng.random() < 0.2
                          else self.valid_db_text())
        # A 1.0 payload is found by host and binary: they stay as they are.

    # Breaking -----------------------------------------------------------

    def _break(self, case):
        rng = self.rng
        ops = ['event_type_type']
        if self.envelope_damage:
            ops.append('not_dict')
        if not self.wire:
            ops.append('metadata_type')
        elif self.priority_damage:
            ops += ['priority_type', 'priority_unknown', 'priority_missing']
        if case.verdict != 'ignored':
            ops += ['event_type_shape'] * 2 + [
                'payload_type', 'payload_missing', 'no_key', 'namespace',
                'name_type', 'name_type', 'name_unknown', 'version_type',
                'version_garbage', 'major', 'data_type']
            if case.verdict == 'instance':
                ops += ['uuid'] * 4
            else:
                ops += ['svc_missing', 'svc_type', 'svc_type', 'svc_null',
                        'svc_dbstr', 'svc_time']
                if case.verdict == 'service':
                    ops += ['svc_uuid'] * 2
        op = rng.choice(ops)
        case.mutations.append('BREAK:' + op)
        msg = case.message
        payload = msg.get('payload')
        if op == 'not_dict':
            case.message = rng.choice([
                [msg], 'instance.update', 42, None, True, 1.5,
                '{"event_type": "instance.update"}', [],
                ['event_type', 'payload']])
        elif op == 'event_type_type':
            if rng.random() < 0.2:
                msg.pop('event_type')
            else:
                value = self.non_str()
                msg['event_type'] = value
        elif op == 'metadata_type':
            msg['metadata'] = rng.choice([
                [], [('message_id', 'x')], 'metadata', 0, 1.5, True,
                ['message_id']])
        elif op == 'priority_type':
            msg['priority'] = self.non_str()
        elif op == 'priority_unknown':
            msg['priority'] = rng.choice([
                'bogus', '', 'INFO\x00', 'in fo', '\u0130NFO', 'info\ud800',
                'notification', 'x' * KB100, 'informational', 'warning'])
        elif op == 'priority_missing':
            msg.pop('priority')
        elif op == 'event_type_shape':
            family = msg['event_type'].split('.', 1)[0]
            msg['event_type'] = family + rng.choice([
                '.', '.Update', '.update.end.more', '.upd\ud800ate',
                '.upd\x00ate', '.' + 'a' * 300, '.update ', '.ünïcode',
                '.update\u202e', '.\U0001F4A9', '..update', '.update.',
                '.create-end'])
        elif op == 'payload_type':
            msg['payload'] = self.non_dict()
        elif op == 'payload_missing':
            msg.pop('payload')
        elif op == 'no_key':
            del payload[rng.choice(['nova_object.name', 'nova_object.version',
                                    'nova_object.data',
                                    'nova_object.namespace'])]
        elif op == 'namespace':
            payload['nova_object.namespace'] = rng.choice([
                'Nova', 'nova ', 'cinder', '\ud800', '', None, ['nova'],
                {'nova': 1}, 1, 'nova\x00'])
        elif op == 'name_type':
            # The original report: a list.
            name = payload['nova_object.name']
            payload['nova_object.name'] = rng.choice([
                [name], {name: 1}, None, 1, True, 1.5, [], {}])
        elif op == 'name_unknown':
            name = payload['nova_object.name']
            payload['nova_object.name'] = rng.choice([
                'NoSuchPayload', name + '\ud800', name.lower(), name + 'X',
                name + ' ', 'x' * KB100, '', 'FlavorPayload',
                'InstanceActionNotification', 'ServiceStatusNotification',
                name + '\x00', '\u202e' + name] + (
                    ['ServiceStatusPayload', 'InstanceUpdatePayloadV3']
                    if case.verdict == 'instance' else
                    ['InstanceUpdatePayload']))
        elif op == 'version_type':
            payload['nova_object.version'] = rng.choice([
                1.9, 1, 2, None, ['1.0'], {'1': 0}, True])
        elif op == 'version_garbage':
            payload['nova_object.version'] = rng.choice([
                '1', '1.9.1', 'v1.9', '1.x', ' 1.9', '1.9 ', '\uff11.\uff19',
                '\u0662.\u0660', '1.9\x00', '', '1.' + '9' * KB100, '-1.0',
                '1..9', '.9', '1.\ud800', '1.0e1', '0x1.0', '12345.1'])
        elif op == 'major':
            name = payload['nova_object.name']
            major = self.majors.get(name, 1)
            payload['nova_object.version'] = '%d.%d' % (
                rng.choice([m for m in (0, 2, 3, 99) if m != major]),
                rng.randrange(20))
        elif op == 'data_type':
            payload['nova_object.data'] = self.non_dict()
        elif op == 'uuid':
            data = self._data(case)
            field = self._read_field(case)
            roll = rng.random()
            if roll < 0.15:
                del data[field]
            elif roll < 0.4:
                data[field] = self.non_str()
            else:
                data[field] = self.bad_uuid(case.key)
        elif op == 'svc_missing':
            data = self._data(case)
            names = sorted(self.service_fields)
            if case.verdict == 'service10':
                names.remove('uuid')
            del data[rng.choice(names)]
        elif op == 'svc_type':
            self._break_service_type(case)
        elif op == 'svc_null':
            names = ['report_count', 'disabled', 'forced_down', 'version']
            if case.verdict == 'service':
                names.append('uuid')
            else:
                names += ['host', 'binary']
            self._data(case)[rng.choice(names)] = None
        elif op == 'svc_dbstr':
            self._data(case)[rng.choice(['host', 'binary'])] = rng.choice([
                '', 'h' * 256, 'ho\x00st', 'ho\ud800st', 'x' * KB100,
                '\udfff'])
        elif op == 'svc_time':
            self._data(case)['last_seen_up'] = rng.choice([
                'yesterday', '\ud800', '2012-13-45T99:00:00Z', 'x' * KB100,
                '', '2012-10-29T13:42:05Z\x00'])
        elif op == 'svc_uuid':
            data = self._data(case)
            data['uuid'] = self.bad_uuid(data['uuid'])

    def _break_service_type(self, case):
        rng = self.rng
        data = self._data(case)
        strings = ['host', 'binary', 'topic', 'disabled_reason',
                   'availability_zone', 'last_seen_up']
        if case.verdict == 'service':
            strings.append('uuid')
        name = rng.choice(strings + ['report_count', 'version', 'disabled',
                                     'forced_down'])
        if name in strings:
            wrong = [1, 1.5, True, [], {}, ['a'], {'a': 'b'}, 0]
        elif name in ('report_count', 'version'):
            wrong = ['1', 1.0, True, False, [], {}, '', [1]]
        else:
            wrong = [0, 1, 'true', 'False', [], {}, 1.0, [True]]
        data[name] = rng.choice(wrong)


def repro_cases():
    """The reports of issue 9 as (label, message) pairs; all are bad."""
    instance = {
        'nova_object.name': ['InstanceUpdatePayload'],
        'nova_object.namespace': 'nova',
        'nova_object.version': '2.1',
        'nova_object.data': {'uuid': str(uuid_lib.uuid4())}}
    huge = copy.deepcopy(instance)
    huge['nova_object.name'] = 'InstanceUpdatePayload'
    huge['nova_object.data']['uuid'] = 'u' * KB100
    return [
        ('name-is-a-list', {'event_type': 'instance.update',
                            'payload': instance,
                            'publisher_id': 'nova-compute:host1',
                            'priority': 'INFO'}),
        ('uuid-100kb', {'event_type': 'instance.update', 'payload': huge,
                        'publisher_id': 'nova-compute:host1',
                        'priority': 'INFO'}),
    ]
