/**
 * Every `keyless` command by the words that name it, in the order `keyless help` lists them. The table
 * only imports the commands; a command that runs others (`rotate`) imports their cores directly, never
 * this table, so there is no import cycle.
 */
import {
  certImportCommand,
  certIssueCommand,
  type Command,
  csrCommand,
  keysCreateCommand,
  statusCommand,
} from './commands';
import { fleetScaleCommand, fleetStatusCommand } from './fleet';
import { rotateCommand } from './rotate';

export const COMMANDS: Readonly<Record<string, Command>> = {
  'keys create': keysCreateCommand,
  csr: csrCommand,
  'cert issue': certIssueCommand,
  'cert import': certImportCommand,
  status: statusCommand,
  'fleet status': fleetStatusCommand,
  'fleet scale': fleetScaleCommand,
  rotate: rotateCommand,
};
