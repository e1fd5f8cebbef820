//! Translation: a flow key through the tables into datapath actions and a megaflow mask.
