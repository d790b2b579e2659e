export { startLocalLambda } from './server';
export type {
  FunctionStats,
  LocalLambdaFault,
  LocalLambda,
  LocalLambdaContext,
  LocalLambdaHandler,
  LocalLambdaOptions,
} from './server';
