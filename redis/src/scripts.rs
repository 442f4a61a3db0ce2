//! The Lua scripts that change Redis: each writes an entry's state and the event announcing it
//! in one atomic step, so a replica following the stream never sees one without the other.
//! Every key a script touches shares one hash tag (see [`super::layout`]).
//!
//! Each returns its event's stream id and running number: the number is the bucket's
//! generation, which replicas remember to notice a server that went back in time.

use redis::Script;

/// KEYS: entry, stream, counter, scope set. ARGV: entry bytes, origin, publish µs, TTL ms,
/// stream max length. Returns the put's stream id and number.
const PUT: &str = r"
local n = redis.call('INCR', KEYS[3])
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*',
    'op', 'put', 'o', ARGV[2], 'n', n, 't', ARGV[3], 'e', ARGV[1])
redis.call('HSET', KEYS[1], 'id', id, 'e', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SADD', KEYS[4], KEYS[1])
redis.call('PEXPIRE', KEYS[4], ARGV[4])
return {id, n}
";

/// KEYS: entry, stream, counter, scope set. ARGV: removal bytes, origin, publish µs, stream
/// max length. Returns the delete's stream id and number.
const DEL: &str = r"
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[4], KEYS[1])
local n = redis.call('INCR', KEYS[3])
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*',
    'op', 'del', 'o', ARGV[2], 'n', n, 't', ARGV[3], 'e', ARGV[1])
return {id, n}
";

/// KEYS: scope set, stream, counter. ARGV: scope encoding, origin, publish µs, stream max
/// length. The set's members share its hash tag. Returns the purge's stream id and number.
const PURGE: &str = r"
for _, k in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    redis.call('DEL', k)
end
redis.call('DEL', KEYS[1])
local n = redis.call('INCR', KEYS[3])
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*',
    'op', 'purge', 'o', ARGV[2], 'n', n, 't', ARGV[3], 'e', ARGV[1])
return {id, n}
";

pub(crate) struct Scripts {
    pub(crate) put: Script,
    pub(crate) del: Script,
    pub(crate) purge: Script,
}

impl Scripts {
    pub(crate) fn new() -> Scripts {
        Scripts {
            put: Script::new(PUT),
            del: Script::new(DEL),
            purge: Script::new(PURGE),
        }
    }
}
