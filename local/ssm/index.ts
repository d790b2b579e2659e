/** Local SSM Parameter Store endpoint (AWS JSON 1.1, `AmazonSSM`) for the no-AWS stack and the deploy rehearsal. */
export { startLocalSsm, type LocalSsm, type LocalSsmOptions } from './server';
export { SsmError } from './errors';
