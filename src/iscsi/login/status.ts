/** RFC 7143 §11.13.5: Login Response Status-Class and Status-Detail, as one 16-bit code. */
export const LoginStatus = {
  Success: 0x0000,
  TargetMovedTemporarily: 0x0101,
  TargetMovedPermanently: 0x0102,
  InitiatorError: 0x0200,
  AuthenticationFailure: 0x0201,
  AuthorizationFailure: 0x0202,
  TargetNotFound: 0x0203,
  TargetRemoved: 0x0204,
  UnsupportedVersion: 0x0205,
  TooManyConnections: 0x0206,
  MissingParameter: 0x0207,
  CantIncludeInSession: 0x0208,
  SessionTypeNotSupported: 0x0209,
  SessionDoesNotExist: 0x020a,
  InvalidDuringLogin: 0x020b,
  TargetError: 0x0300,
  ServiceUnavailable: 0x0301,
  OutOfResources: 0x0302,
} as const;
export type LoginStatus = (typeof LoginStatus)[keyof typeof LoginStatus];

/** A login that must end with a non-success status (RFC 7143 §6.3: the target then closes). */
export class LoginFailure extends Error {
  constructor(
    readonly status: LoginStatus,
    message: string,
  ) {
    super(message);
    this.name = 'LoginFailure';
  }
}
