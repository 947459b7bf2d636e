// The typed emitter the component shares with @natter/client (events are keys of a type).
export { Emitter, type Listener, type WaitForOptions } from '@natter/protocol';
