//! Instruction limits for Lua checks and weight functions.
//!
//! mlua 0.10 keeps one hook callback per Lua state, bound to one thread at a time, so it
//! cannot meter many check coroutines at once. Instead each metered call runs in its own
//! coroutine that first calls `arm` (a C function, so it sees the coroutine's own
//! `lua_State`) to install a raw count hook on that thread. The hook charges the meter that
//! is current while the coroutine is being resumed (set by [`Metered`] around each poll, so
//! nested coroutines are charged to their check too) and, every [`HOOK_EVERY`] instructions,
//! yields back to tokio so that a busy check cannot starve the others, and the check's
//! timeout can fire. Past the limit the coroutine is stopped.

use mlua::ffi;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// Instructions between two hook calls (and cooperative yields).
pub const HOOK_EVERY: i32 = 10_000;

/// The instruction budget of one metered call.
pub struct Meter {
    used: Cell<u64>,
    limit: u64,
    /// The coroutine `arm` ran in: only it may be yielded (a nested coroutine's yield would
    /// be seen by the Lua code that resumed it).
    armed: Cell<*mut ffi::lua_State>,
    may_yield: bool,
    exceeded: Cell<bool>,
}

impl Meter {
    pub fn new(limit: u64, may_yield: bool) -> Rc<Meter> {
        Rc::new(Meter { used: Cell::new(0), limit, armed: Cell::new(std::ptr::null_mut()), may_yield, exceeded: Cell::new(false) })
    }
    pub fn exceeded(&self) -> bool {
        self.exceeded.get()
    }
    pub fn message(&self) -> String {
        format!("instruction limit of {} exceeded (an endless loop?)", self.limit)
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Meter>>> = const { RefCell::new(None) };
}

/// Run `f` with `meter` as the current meter.
pub fn with_meter<R>(meter: &Rc<Meter>, f: impl FnOnce() -> R) -> R {
    let prev = CURRENT.with(|c| c.replace(Some(meter.clone())));
    let r = f();
    CURRENT.with(|c| *c.borrow_mut() = prev);
    r
}

enum Action {
    Continue,
    Yield,
    Stop,
}

static LIMIT_MSG: &[u8] = b"instruction limit exceeded (an endless loop?)\0";

unsafe extern "C-unwind" fn hook(state: *mut ffi::lua_State, _ar: *mut ffi::lua_Debug) {
    let action = CURRENT.with(|c| match c.borrow().as_ref() {
        None => Action::Continue,
        Some(m) => {
            let used = m.used.get() + HOOK_EVERY as u64;
            m.used.set(used);
            let yieldable = m.may_yield && state == m.armed.get() && unsafe { ffi::lua_isyieldable(state) } != 0;
            if used > m.limit {
                m.exceeded.set(true);
                // Yielding lets `Metered` drop the coroutine; an error is the fallback.
                if yieldable { Action::Yield } else { Action::Stop }
            } else if yieldable {
                Action::Yield
            } else {
                Action::Continue
            }
        }
    });
    // No Rust values with destructors are alive below: lua_error does not return.
    match action {
        Action::Continue => {}
        // Inside a hook lua_yield returns; the VM yields once the hook is done.
        Action::Yield => unsafe {
            ffi::lua_yield(state, 0);
        },
        Action::Stop => unsafe {
            ffi::lua_pushstring(state, LIMIT_MSG.as_ptr() as *const _);
            ffi::lua_error(state);
        },
    }
}

/// `arm()`: install the count hook on the calling coroutine.
unsafe extern "C-unwind" fn arm(state: *mut ffi::lua_State) -> std::os::raw::c_int {
    CURRENT.with(|c| {
        if let Some(m) = c.borrow().as_ref() {
            m.armed.set(state);
        }
    });
    unsafe { ffi::lua_sethook(state, Some(hook), ffi::LUA_MASKCOUNT, HOOK_EVERY) };
    0
}

const ENTRY: &str = "lvsd.check.entry";

/// `function(f, ...) arm() return f(...) end`, made once per Lua state.
pub fn entry(lua: &mlua::Lua) -> mlua::Result<mlua::Function> {
    if let Ok(f) = lua.named_registry_value::<mlua::Function>(ENTRY) {
        return Ok(f);
    }
    // SAFETY: `arm` follows the lua_CFunction protocol and touches only the calling thread.
    let arm_fn = unsafe { lua.create_c_function(arm)? };
    let f: mlua::Function = lua
        .load("local arm = ... return function(f, ...) arm() return f(...) end")
        .set_name("=lvsd.check")
        .call(arm_fn)?;
    lua.set_named_registry_value(ENTRY, &f)?;
    Ok(f)
}

/// A coroutine future run with its meter current; ends with an error once the meter ran out.
pub struct Metered<F> {
    inner: Pin<Box<F>>,
    meter: Rc<Meter>,
}

impl<F> Metered<F> {
    pub fn new(inner: F, meter: Rc<Meter>) -> Metered<F> {
        Metered { inner: Box::pin(inner), meter }
    }
}

impl<F: Future<Output = mlua::Result<T>>, T> Future for Metered<F> {
    type Output = mlua::Result<T>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let meter = self.meter.clone();
        let r = with_meter(&meter, || self.inner.as_mut().poll(cx));
        match r {
            Poll::Pending if meter.exceeded() => Poll::Ready(Err(mlua::Error::RuntimeError(meter.message()))),
            Poll::Ready(Err(_)) if meter.exceeded() => Poll::Ready(Err(mlua::Error::RuntimeError(meter.message()))),
            r => r,
        }
    }
}
