//! Limits on every entry into Lua, shared by the policy engine and the Lua checks: an
//! instruction budget and a wall-clock deadline, enforced by one raw count hook.
//!
//! Why a raw hook and not mlua's `set_hook`: mlua's hook belongs to one `lua_State`, and when
//! it fires in another one (a coroutine, which inherits the hook from the thread that created
//! it: Lua 5.4 `lua_newthread` copies `hook`, `hookmask` and `basehookcount`) it removes
//! itself, so `coroutine.wrap(function() while true do end end)()` ran unmetered. This hook
//! is a plain C function: it is inherited by every coroutine, nested ones too, and finds its
//! meter itself.
//!
//! Which meter: the one made current on this OS thread by [`with_meter`] (each metered call,
//! and each poll of a Lua check, see [`Metered`]), else the state's own [`Budget`], whose
//! address every thread of the state carries in its `LUA_EXTRASPACE` (copied from the main
//! thread by `lua_newthread`).
//!
//! Once a meter is exceeded the hook fires on every instruction and raises an error each
//! time, so a `pcall`, `xpcall`, message handler or `__close` method that catches the first
//! error cannot go on: its next instruction fails too, until the error reaches Rust.
//!
//! What no hook can stop: a single C call (a pathological `string.find` pattern, a huge
//! `table.sort` without a comparator) runs to completion; the policy sandbox bounds the
//! patterns, and the memory limit bounds the rest. Finalizers (`__gc`) run with hooks off;
//! the policy sandbox refuses them.

use mlua::ffi;
use std::cell::RefCell;
use std::future::Future;
use std::os::raw::c_int;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// Instructions between two count-hook calls (and cooperative yields of Lua checks).
pub const HOOK_EVERY: i32 = 10_000;

/// The hook also runs at every function call, so that the deadline is checked between two
/// C calls however few instructions separate them (`while true do s:rep(1e7) end`).
const MASK: c_int = ffi::LUA_MASKCOUNT | ffi::LUA_MASKCALL;

/// The budget of one entry into Lua: instructions, and wall-clock time from the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub instructions: u64,
    pub time: Duration,
}

/// The monotonic clock the hook reads, in nanoseconds. The coarse clock costs a few
/// nanoseconds (it is read at every call) and its few milliseconds of resolution are
/// enough for deadlines of a tenth of a second and more.
fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime with a valid pointer to a local timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}

const NOT_EXCEEDED: u8 = 0;
const BY_INSTRUCTIONS: u8 = 1;
const BY_TIME: u8 = 2;

/// The budget of one metered call (or of one state, see [`Budget`]). Atomics only because
/// a state's budget travels with its `Policy` between threads; one thread uses it at a time.
pub struct Meter {
    used: AtomicU64,
    limit: AtomicU64,
    /// When the current entry started (for a Lua check: the current poll).
    started: AtomicU64,
    /// Nanoseconds the entry may take; 0: the state's hook time (see [`set_call_limits`]).
    time: AtomicU64,
    exceeded: AtomicU8,
    /// The coroutine `arm` ran in: only it may be yielded (a nested coroutine's yield would
    /// be seen by the Lua code that resumed it).
    armed: AtomicPtr<ffi::lua_State>,
    may_yield: bool,
    /// Remember where the code was at each count hook (for memory errors, which carry no
    /// position). Off for checks and hooks: it costs a `lua_getinfo` per hook.
    track_position: AtomicBool,
    last_seen: Mutex<(String, u32)>,
    /// The state's call limits (hooks, weight functions, REPL), for [`call_sync`].
    calls: Mutex<Option<Entry>>,
    /// Between entries (see [`Budget::run`]): Lua run now was entered without a meter of its
    /// own, so each burst of hook calls is an entry (a burst ends after [`IDLE_GAP_NS`]).
    idle: AtomicBool,
    last_hook: AtomicU64,
}

/// A poll of a Lua check (which yields every [`HOOK_EVERY`] instructions when it can) may take
/// this many times the state's call time: a collection of a full heap can fall in one poll.
const POLL_FACTOR: u64 = 10;

/// A pause between two hook calls longer than this starts a new entry on an idle budget.
const IDLE_GAP_NS: u64 = 20_000_000;

impl Meter {
    /// A meter of `limit` instructions; its time is the state's hook time.
    pub fn new(limit: u64, may_yield: bool) -> Arc<Meter> {
        Arc::new(Meter {
            used: AtomicU64::new(0),
            limit: AtomicU64::new(limit),
            started: AtomicU64::new(now_ns()),
            time: AtomicU64::new(0),
            exceeded: AtomicU8::new(NOT_EXCEEDED),
            armed: AtomicPtr::new(std::ptr::null_mut()),
            may_yield,
            track_position: AtomicBool::new(false),
            last_seen: Mutex::new((String::new(), 0)),
            calls: Mutex::new(None),
            idle: AtomicBool::new(false),
            last_hook: AtomicU64::new(0),
        })
    }

    /// Start an entry: counters to zero, the deadline `entry.time` from now.
    pub fn start(&self, entry: Entry) {
        self.used.store(0, Relaxed);
        self.limit.store(entry.instructions, Relaxed);
        self.time.store(entry.time.as_nanos().min(u64::MAX as u128).max(1) as u64, Relaxed);
        self.started.store(now_ns(), Relaxed);
        self.exceeded.store(NOT_EXCEEDED, Relaxed);
    }

    pub fn exceeded(&self) -> bool {
        self.exceeded.load(Relaxed) != NOT_EXCEEDED
    }

    /// Whether the limit exceeded was the time, not the instructions.
    pub fn exceeded_time(&self) -> bool {
        self.exceeded.load(Relaxed) == BY_TIME
    }

    /// What was exceeded, for the error message.
    pub fn message(&self) -> String {
        match self.exceeded.load(Relaxed) {
            BY_TIME => format!("time limit of {} ms exceeded (an endless loop, or a slow call?)", self.time_ns(None) / 1_000_000),
            _ => format!("instruction limit of {} exceeded (an endless loop?)", self.limit.load(Relaxed)),
        }
    }

    /// File and line the Lua code was at when the count hook last ran (if tracked).
    pub fn last_seen(&self) -> (String, u32) {
        self.last_seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn time_ns(&self, state_default: Option<&Meter>) -> u64 {
        match self.time.load(Relaxed) {
            0 => state_default
                .and_then(|d| *d.calls.lock().unwrap_or_else(|e| e.into_inner()))
                .map(|e| (e.time.as_nanos().min(u64::MAX as u128) as u64).saturating_mul(if self.may_yield { POLL_FACTOR } else { 1 }))
                .unwrap_or(0),
            t => t,
        }
    }

    /// Charge `n` instructions and look at the clock; true once over either limit.
    fn charge(&self, n: u64, state_default: Option<&Meter>) -> bool {
        let now = now_ns();
        let last = self.last_hook.swap(now, Relaxed);
        if self.idle.load(Relaxed) && now.saturating_sub(last) > IDLE_GAP_NS {
            self.used.store(0, Relaxed);
            self.started.store(now, Relaxed);
            self.exceeded.store(NOT_EXCEEDED, Relaxed);
        }
        if self.exceeded() {
            return true;
        }
        let used = self.used.fetch_add(n, Relaxed).saturating_add(n);
        if used > self.limit.load(Relaxed) {
            self.exceeded.store(BY_INSTRUCTIONS, Relaxed);
            return true;
        }
        let time = self.time_ns(state_default);
        if time != 0 && now.saturating_sub(self.started.load(Relaxed)) > time {
            if self.time.load(Relaxed) == 0 {
                // Keep the effective time for the message.
                self.time.store(time, Relaxed);
            }
            self.exceeded.store(BY_TIME, Relaxed);
            return true;
        }
        false
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Meter>>> = const { RefCell::new(None) };
    /// Call events seen; only every [`CALLS_EVERY`]th looks at the meter.
    static CALLS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// A call event looks at the meter once in this many: the hook runs at every call, and most
/// calls are quick Lua or C functions; a loop of slow C calls overruns its deadline by at most
/// this many calls.
const CALLS_EVERY: u32 = 16;

/// Run `f` with `meter` as the current meter of this OS thread.
pub fn with_meter<R>(meter: &Arc<Meter>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<Meter>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = prev);
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.replace(Some(meter.clone()))));
    f()
}

enum Action {
    Continue,
    Yield,
    /// The message, in a plain buffer: `lua_error` jumps over this frame, so nothing with a
    /// destructor may be alive when it is called.
    Stop([u8; 160], usize),
}

fn stop(msg: &str) -> Action {
    let mut buf = [0u8; 160];
    let n = msg.len().min(buf.len());
    buf[..n].copy_from_slice(&msg.as_bytes()[..n]);
    Action::Stop(buf, n)
}

/// The state's budget, read from the thread's extra space (null before `install`).
unsafe fn state_meter<'a>(state: *mut ffi::lua_State) -> Option<&'a Meter> {
    // SAFETY: the extra space holds null or a pointer set by `install` to a Meter kept
    // alive by the state's app data for as long as the state exists.
    unsafe {
        let p = *(ffi::lua_getextraspace(state) as *const *const Meter);
        p.as_ref()
    }
}

fn remember_position(m: &Meter, state: *mut ffi::lua_State, ar: *mut ffi::lua_Debug) {
    // SAFETY: `ar` is the activation record the hook was called with; "Sl" fills source
    // and currentline of the running function.
    let (file, line) = unsafe {
        if ffi::lua_getinfo(state, c"Sl".as_ptr(), ar) == 0 || (*ar).source.is_null() {
            return;
        }
        let src = std::ffi::CStr::from_ptr((*ar).source).to_bytes();
        (src, (*ar).currentline.max(0) as u32)
    };
    let file = String::from_utf8_lossy(file);
    let file = file.trim_start_matches('@');
    let mut seen = m.last_seen.lock().unwrap_or_else(|e| e.into_inner());
    if seen.0 != file {
        seen.0 = file.to_string();
    }
    seen.1 = line;
}

unsafe extern "C-unwind" fn hook(state: *mut ffi::lua_State, ar: *mut ffi::lua_Debug) {
    // SAFETY (whole function): `state` and `ar` are what Lua passes to a hook.
    let event = unsafe { (*ar).event };
    let count = event == ffi::LUA_HOOKCOUNT;
    if !count {
        let n = CALLS.with(|c| {
            let n = c.get().wrapping_add(1);
            c.set(n);
            n
        });
        if !n.is_multiple_of(CALLS_EVERY) {
            return;
        }
    }
    let default = unsafe { state_meter(state) };
    let action = CURRENT.with(|c| {
        let current = c.borrow();
        let Some(m) = current.as_deref().or(default) else { return Action::Continue };
        if count && m.track_position.load(Relaxed) {
            remember_position(m, state, ar);
        }
        let yieldable = count && m.may_yield && state == m.armed.load(Relaxed) && unsafe { ffi::lua_isyieldable(state) } != 0;
        if m.charge(if count { HOOK_EVERY as u64 } else { 0 }, default) {
            // From now on this thread errs at every instruction: whatever catches this
            // error fails again at once.
            if unsafe { ffi::lua_gethookcount(state) } != 1 {
                unsafe { ffi::lua_sethook(state, Some(hook), MASK, 1) };
            }
            // Yielding lets `Metered` drop the coroutine; an error is the fallback.
            if yieldable { Action::Yield } else { stop(&m.message()) }
        } else {
            if unsafe { ffi::lua_gethookcount(state) } != HOOK_EVERY {
                // Left at 1 by an earlier entry that was stopped.
                unsafe { ffi::lua_sethook(state, Some(hook), MASK, HOOK_EVERY) };
            }
            if yieldable { Action::Yield } else { Action::Continue }
        }
    });
    match action {
        Action::Continue => {}
        // Inside a hook lua_yield returns; the VM yields once the hook is done.
        Action::Yield => unsafe {
            ffi::lua_yield(state, 0);
        },
        Action::Stop(msg, n) => unsafe {
            push_where(state);
            ffi::lua_pushlstring(state, msg.as_ptr() as *const _, n);
            ffi::lua_concat(state, 2);
            // No Rust value with a destructor is alive here: lua_error does not return.
            ffi::lua_error(state);
        },
    }
}

/// Push "file:line: " of the innermost function on the stack that comes from a file (a
/// chunk named "@..."): the policy's line, not that of a wrapper such as `xpcall`.
unsafe fn push_where(state: *mut ffi::lua_State) {
    for level in 0..32 {
        // SAFETY: a zeroed lua_Debug is a valid output buffer; getstack/getinfo fill it.
        let mut ar: ffi::lua_Debug = unsafe { std::mem::zeroed() };
        if unsafe { ffi::lua_getstack(state, level, &mut ar) } == 0 {
            break;
        }
        if unsafe { ffi::lua_getinfo(state, c"Sl".as_ptr(), &mut ar) } == 0 || ar.source.is_null() || ar.currentline <= 0 {
            continue;
        }
        let src = unsafe { std::ffi::CStr::from_ptr(ar.source) }.to_bytes();
        if let Some(file) = src.strip_prefix(b"@") {
            // In a stack buffer: lua_pushlstring may raise (out of memory), and nothing with
            // a destructor may be alive then.
            let mut buf = [0u8; 512];
            let mut w = std::io::Cursor::new(&mut buf[..]);
            let file = &file[..file.len().min(400)];
            let _ = std::io::Write::write_all(&mut w, file);
            let _ = std::io::Write::write_fmt(&mut w, format_args!(":{}: ", ar.currentline));
            let n = w.position() as usize;
            unsafe { ffi::lua_pushlstring(state, buf.as_ptr() as *const _, n) };
            return;
        }
    }
    unsafe { ffi::luaL_where(state, 0) };
}

/// Put the hook on `state` (and so on every coroutine created from it afterwards).
unsafe fn set_hook(state: *mut ffi::lua_State) {
    unsafe { ffi::lua_sethook(state, Some(hook), MASK, HOOK_EVERY) };
}

/// The state's own meter, kept in its app data so that the extra-space pointer stays valid.
struct StateMeter(#[allow(dead_code)] Arc<Meter>);

/// Meter every entry into `lua` with `budget` (unless a call makes another meter current):
/// put the hook on the main thread and the budget's address in its extra space, before any
/// coroutine exists. Call once, right after creating the state.
pub fn install(lua: &mlua::Lua, budget: &Budget) -> mlua::Result<()> {
    replace_xpcall(lua)?;
    let meter = budget.meter.clone();
    let ptr = Arc::as_ptr(&meter);
    lua.set_app_data(StateMeter(meter));
    // SAFETY: runs on the state's current (main) thread; the extra space is
    // LUA_EXTRASPACE = one pointer wide, unused by mlua.
    unsafe {
        lua.exec_raw::<()>((), |state| {
            *(ffi::lua_getextraspace(state) as *mut *const Meter) = ptr;
            set_hook(state);
        })?;
    }
    // Made now, so that no call has to run Lua outside its meter to make it.
    entry(lua).map(|_| ())
}

/// Lua calls a message handler where the error is raised, and an error raised by the hook is
/// raised inside the hook, where hooks are off: `xpcall(f, function() while true do end
/// end)` would loop unmetered. So `xpcall` is `pcall` followed by a call of the handler once
/// the error is caught, with hooks on. (What a handler could see only where the error was
/// raised, `debug.traceback`, is not in the sandbox.)
fn replace_xpcall(lua: &mlua::Lua) -> mlua::Result<()> {
    let g = lua.globals();
    if g.raw_get::<mlua::Value>("xpcall")?.is_nil() {
        return Ok(());
    }
    let xpcall: mlua::Function = lua
        .load(
            "local pcall = pcall
             local function finish(handler, ok, ...)
               if ok then return true, ... end
               local _, v = pcall(handler, (...))
               return false, v
             end
             return function(f, handler, ...) return finish(handler, pcall(f, ...)) end",
        )
        .set_name("=xpcall")
        .call(())?;
    g.raw_set("xpcall", xpcall)
}

/// The budget of a whole Lua state: the meter used by entries that set none of their own
/// (loading the policy, a REPL evaluation). `reset` before each such entry.
#[derive(Clone)]
pub struct Budget {
    meter: Arc<Meter>,
    /// What `reset` starts.
    entry: Arc<Mutex<Entry>>,
}

impl Default for Budget {
    fn default() -> Budget {
        let entry = Entry { instructions: 200_000_000, time: Duration::from_secs(5) };
        let meter = Meter::new(entry.instructions, false);
        meter.track_position.store(true, Relaxed);
        meter.idle.store(true, Relaxed);
        Budget { meter, entry: Arc::new(Mutex::new(entry)) }
    }
}

impl Budget {
    /// Start an entry with the budget's default entry (see [`Budget::set_default`]).
    pub fn reset(&self) {
        let e = *self.entry.lock().unwrap_or_else(|e| e.into_inner());
        self.start(e);
    }
    /// Start an entry with these limits.
    pub fn start(&self, entry: Entry) {
        self.meter.idle.store(false, Relaxed);
        self.meter.start(entry);
    }
    /// Run `f` as one entry with these limits; afterwards the budget is idle: Lua entered
    /// without a meter (which lvsd does not do) gets the call limits per burst of activity.
    pub fn run<R>(&self, entry: Entry, f: impl FnOnce() -> R) -> R {
        self.start(entry);
        let r = f();
        self.finish();
        r
    }
    /// End an entry (see [`Budget::run`]).
    pub fn finish(&self) {
        let e = self.call_limits().unwrap_or_else(|| *self.entry.lock().unwrap_or_else(|e| e.into_inner()));
        self.meter.start(e);
        self.meter.idle.store(true, Relaxed);
    }
    /// What `reset` starts from now on.
    pub fn set_default(&self, entry: Entry) {
        *self.entry.lock().unwrap_or_else(|e| e.into_inner()) = entry;
    }
    /// The limits of calls made through [`call_sync`] on this state (hooks, weight
    /// functions): at most `entry.instructions`, and `entry.time` per call (and per poll
    /// of a Lua check).
    pub fn set_call_limits(&self, entry: Entry) {
        *self.meter.calls.lock().unwrap_or_else(|e| e.into_inner()) = Some(entry);
    }
    pub fn call_limits(&self) -> Option<Entry> {
        *self.meter.calls.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn exceeded(&self) -> bool {
        self.meter.exceeded()
    }
    /// Whether the limit the running entry exceeded was its time, not its instructions.
    pub fn exceeded_time(&self) -> bool {
        self.meter.exceeded_time()
    }
    pub fn message(&self) -> String {
        self.meter.message()
    }
    /// File and line the Lua code was at when the count hook last ran.
    pub fn last_seen(&self) -> (String, u32) {
        self.meter.last_seen()
    }
}

/// `arm()`: mark the calling coroutine as the one the meter may yield, and make sure it
/// carries the hook (a recycled thread may predate `install`).
unsafe extern "C-unwind" fn arm(state: *mut ffi::lua_State) -> c_int {
    CURRENT.with(|c| {
        if let Some(m) = c.borrow().as_ref() {
            m.armed.store(state, Relaxed);
        }
    });
    unsafe { set_hook(state) };
    0
}

const ENTRY: &str = "lvsd.check.entry";

/// `function(f, ...) arm() return f(...) end`, made once per Lua state.
pub fn entry(lua: &mlua::Lua) -> mlua::Result<mlua::Function> {
    if let Ok(f) = lua.named_registry_value::<mlua::Function>(ENTRY) {
        return Ok(f);
    }
    if lua.app_data_ref::<StateMeter>().is_none() {
        // The hook reads the extra space, which only `install` initialises.
        install(lua, &Budget::default())?;
    }
    // SAFETY: `arm` follows the lua_CFunction protocol and touches only the calling thread.
    let arm_fn = unsafe { lua.create_c_function(arm)? };
    let f: mlua::Function =
        lua.load("local arm = ... return function(f, ...) arm() return f(...) end").set_name("=lvsd.check").call(arm_fn)?;
    lua.set_named_registry_value(ENTRY, &f)?;
    Ok(f)
}

/// A coroutine future run with its meter current; ends with an error once the meter ran out.
/// Each poll is an entry of its own in time: a poll may run [`POLL_FACTOR`] times the
/// state's call time at most (a loop that cannot yield, e.g. inside a `table.sort`
/// comparator, is stopped by it).
pub struct Metered<F> {
    inner: Pin<Box<F>>,
    meter: Arc<Meter>,
}

impl<F> Metered<F> {
    pub fn new(inner: F, meter: Arc<Meter>) -> Metered<F> {
        Metered { inner: Box::pin(inner), meter }
    }
}

impl<F: Future<Output = mlua::Result<T>>, T> Future for Metered<F> {
    type Output = mlua::Result<T>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let meter = self.meter.clone();
        meter.started.store(now_ns(), Relaxed);
        let r = with_meter(&meter, || self.inner.as_mut().poll(cx));
        match r {
            Poll::Pending if meter.exceeded() => Poll::Ready(Err(mlua::Error::RuntimeError(meter.message()))),
            Poll::Ready(Err(_)) if meter.exceeded() => Poll::Ready(Err(mlua::Error::RuntimeError(meter.message()))),
            r => r,
        }
    }
}

/// The text of a Lua error without the traceback and the callback wrapping.
pub fn error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => error_text(cause),
        mlua::Error::WithContext { cause, .. } => error_text(cause),
        mlua::Error::RuntimeError(m) => m.split("\nstack traceback:").next().unwrap_or("").trim().to_string(),
        mlua::Error::MemoryError(_) => "Lua memory limit exceeded".to_string(),
        mlua::Error::ExternalError(e) => e.to_string(),
        other => other.to_string().split("\nstack traceback:").next().unwrap_or("").trim().to_string(),
    }
}

/// The state's call limits (set by the policy engine), if any.
fn call_limits(lua: &mlua::Lua) -> Option<Entry> {
    lua.app_data_ref::<StateMeter>().and_then(|m| *m.0.calls.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Call `f(args)` synchronously in a coroutine of its own, metered: at most `instructions`
/// and at most the state's call limits (instructions and time, see
/// [`Budget::set_call_limits`]), coroutines it creates included. Errors come back as text.
/// Usable for any hook; yielding (an `lvsd.net` call) is an error here.
pub fn call_sync(lua: &mlua::Lua, f: mlua::Function, args: impl mlua::IntoLuaMulti, instructions: u64) -> Result<mlua::Value, String> {
    let err = |e: mlua::Error| error_text(&e);
    let entry = entry(lua).map_err(err)?;
    let thread = lua.create_thread(entry).map_err(err)?;
    let args = (f, args.into_lua_multi(lua).map_err(err)?);
    let meter = Meter::new(instructions, false);
    if let Some(limits) = call_limits(lua) {
        meter.start(Entry { instructions: instructions.min(limits.instructions), time: limits.time });
    }
    let v = with_meter(&meter, || thread.resume::<mlua::Value>(args));
    if meter.exceeded() {
        return Err(meter.message());
    }
    let v = v.map_err(err)?;
    if thread.status() == mlua::ThreadStatus::Resumable {
        return Err("the function yielded (lvsd.net calls belong in checks)".into());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn state(budget: &Budget) -> mlua::Lua {
        let lua = mlua::Lua::new();
        install(&lua, budget).unwrap();
        lua
    }

    fn run(lua: &mlua::Lua, budget: &Budget, entry: Entry, src: &str) -> (Result<(), String>, Duration) {
        let t = Instant::now();
        let r = budget.run(entry, || lua.load(src).set_name("=t").exec().map_err(|e| error_text(&e)));
        (r, t.elapsed())
    }

    const SMALL: Entry = Entry { instructions: 2_000_000, time: Duration::from_secs(30) };
    const SHORT: Entry = Entry { instructions: u64::MAX, time: Duration::from_millis(100) };

    #[test]
    fn pcall_cannot_catch_the_limit_for_good() {
        let b = Budget::default();
        let lua = state(&b);
        for src in [
            "while true do pcall(function() while true do end end) end",
            "while true do xpcall(function() while true do end end, function(m) while true do end end) end",
            "local ok = false repeat ok = pcall(error) until false",
        ] {
            for entry in [SMALL, SHORT] {
                let (r, took) = run(&lua, &b, entry, src);
                let e = r.unwrap_err();
                assert!(e.contains("limit of"), "{src}: {e}");
                assert!(took < Duration::from_secs(20), "{src}: {took:?}");
            }
        }
    }

    #[test]
    fn coroutines_carry_the_hook_nested_too() {
        let b = Budget::default();
        let lua = state(&b);
        for src in [
            "coroutine.wrap(function() while true do end end)()",
            "coroutine.wrap(function() coroutine.wrap(function() while true do pcall(function() while true do end end) end end)() end)()",
            "local co = coroutine.create(function() while true do end end) while true do coroutine.resume(co) end",
        ] {
            let (r, _) = run(&lua, &b, SMALL, src);
            assert!(r.unwrap_err().contains("instruction limit of 2000000"), "{src}");
            let (r, _) = run(&lua, &b, SHORT, src);
            assert!(r.unwrap_err().contains("time limit of 100 ms"), "{src}");
        }
    }

    #[test]
    fn a_new_entry_after_a_stopped_one_runs_normally() {
        let b = Budget::default();
        let lua = state(&b);
        assert!(run(&lua, &b, SMALL, "while true do end").0.is_err());
        // Back to one hook call per HOOK_EVERY instructions, and a fresh budget.
        let (r, _) = run(&lua, &b, SMALL, "local n = 0 for i = 1, 100000 do n = n + i end assert(n == 5000050000)");
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn the_deadline_is_checked_between_c_calls() {
        let b = Budget::default();
        let lua = state(&b);
        lua.set_memory_limit(64 << 20).unwrap();
        let (r, took) = run(&lua, &b, SHORT, "while true do local s = string.rep('x', 1 << 20) end");
        assert!(r.unwrap_err().contains("time limit"));
        assert!(took < Duration::from_secs(10), "{took:?}");
    }

    #[test]
    fn call_sync_uses_the_smaller_budget_and_the_state_time() {
        let b = Budget::default();
        let lua = state(&b);
        b.set_call_limits(Entry { instructions: 1_000_000, time: Duration::from_secs(30) });
        let f: mlua::Function = lua.load("return function() while true do pcall(function() while true do end end) end end").eval().unwrap();
        let e = call_sync(&lua, f.clone(), (), u64::MAX).unwrap_err();
        assert!(e.contains("instruction limit of 1000000"), "{e}");
        b.set_call_limits(Entry { instructions: u64::MAX, time: Duration::from_millis(50) });
        let e = call_sync(&lua, f, (), u64::MAX).unwrap_err();
        assert!(e.contains("time limit of 50 ms"), "{e}");
        let g: mlua::Function = lua.load("return function(a) return a * 2 end").eval().unwrap();
        assert_eq!(call_sync(&lua, g, 21, u64::MAX), Ok(mlua::Value::Integer(42)));
    }
}

#[cfg(test)]
mod idle_tests {
    use super::*;

    #[test]
    fn an_idle_budget_stops_unmetered_runaways_but_not_later_entries() {
        let b = Budget::default();
        let lua = mlua::Lua::new();
        install(&lua, &b).unwrap();
        b.set_call_limits(Entry { instructions: 1_000_000, time: Duration::from_secs(30) });
        b.finish();
        let e = lua.load("while true do pcall(function() while true do end end) end").exec().unwrap_err();
        assert!(error_text(&e).contains("instruction limit of 1000000"), "{e}");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(lua.load("local n = 0 for i = 1, 1000 do n = n + i end return n").eval::<i64>().unwrap(), 500500);
    }
}
