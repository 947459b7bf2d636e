import { Emitter } from '@natter/protocol';

export { Emitter, TimeoutError, type Listener, type WaitForOptions } from '@natter/protocol';

/** Builds a module API: an emitter carrying `members` (getters stay live, unlike Object.assign). */
export function emitterWith<Api extends Emitter<any>>(
  members: Omit<Api, keyof Emitter<object>>,
  errorSink?: (err: Error) => void,
): Api {
  const target = new Emitter<object>(errorSink);
  Object.defineProperties(target, Object.getOwnPropertyDescriptors(members));
  return target as unknown as Api;
}
